"""``hand-recon bench NAME``: the project's benchmarks.

Each benchmark is a module exposing ``add_arguments(parser)`` and ``run(args) -> dict`` (heavy imports inside
``run``); short names resolve under ``hand_recon_core.bench``, dotted names are full module paths (ROS-layer
benchmarks live in ``hand_recon_ros``). The dict is printed as JSON (and written to ``--json`` when given).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

#: benchmark name -> (module under hand_recon_core.bench, or a full dotted module path, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "messages": ("hand_recon_ros.bench_messages", "HandMeshArray size and round trip: Point[] vs flat float32[]"),
    "hand-layer": ("hand_layer", "HandLayer forward time (batch 64 by default)"),
    "render": ("render", "synthetic renderer images/s at 256x256 and 512x512"),
    "synth": ("synth", "synthetic data engine images/s per family and size"),
    "train": ("train", "training samples/s"),
    "scaling": ("scaling", "single-stage vs two-stage inference time against the number of hands"),
    "refiner": ("refiner", "two-hand refiner FPS for T = 1, 2, 3 stages"),
    "ros": ("hand_recon_ros.bench_ros", "latency the ROS layer adds (image in -> HandMeshArray out, minus model time)"),
}


def add_parser(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__)
    bench_sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for bench_name, (module_name, bench_help) in BENCHMARKS.items():
        full_name = module_name if "." in module_name else f"hand_recon_core.bench.{module_name}"
        try:
            module = importlib.import_module(full_name)
        except ModuleNotFoundError as exc:
            if exc.name == full_name:
                continue  # not written yet
            p = bench_sub.add_parser(bench_name, help=f"{bench_help} [unavailable: {exc}]")
            p.set_defaults(func=_unavailable(bench_name, exc))
            continue
        p = bench_sub.add_parser(bench_name, help=bench_help)
        p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
        module.add_arguments(p)
        p.set_defaults(func=_runner(module))
    parser.set_defaults(func=lambda _a: (parser.print_help(), 0)[1])


def _unavailable(name: str, exc: Exception):
    def run(_args: argparse.Namespace) -> int:
        hint = " (ROS 2 benchmarks need the set-up env: source .ros_ws/env.sh)" if "ros" in str(exc) else ""
        print(f"hand-recon bench {name}: cannot run: {exc}{hint}", file=sys.stderr)
        return 2

    return run


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        results = module.run(args)
        text = json.dumps(results, indent=2, sort_keys=True)
        print(text)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(text + "\n")
        return 0

    return run


if __name__ == "__main__":
    from hand_recon_core.cli.main import main

    sys.exit(main(["bench", *sys.argv[1:]]))
