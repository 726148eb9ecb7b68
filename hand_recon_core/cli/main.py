"""Entry point of the ``hand-recon`` console command.

Each subcommand is a module in :mod:`hand_recon_core.cli` exposing ``add_parser(subparsers)``; the parser it
adds sets ``func(args) -> int``. Modules are imported lazily by name so ``hand-recon --help`` stays fast and
does not import torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand name -> (module under hand_recon_core.cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "generate synthetic hand scenes (shards, previews)"),
    "train": ("train", "train a method from a YAML config"),
    "eval": ("evaluate", "evaluate a checkpoint on a dataset"),
    "infer": ("infer", "run the inference pipeline on an image, folder or video"),
    "bench": ("bench", "run a benchmark (hand layer, renderer, messages, ROS, scaling ...)"),
    "export": ("export", "export a checkpoint to ONNX / TensorRT"),
    "hand-model": ("hand_model", "generate, inspect and render hand models"),
    "ros-demo": ("ros_demo", "run the ROS 2 demo nodes in one process (no `launch` needed)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hand-recon",
        description="3D hand mesh reconstruction from RGB images (hand_recon).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(f"hand_recon_core.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hand_recon_core.cli.{module_name}":
                raise
            p = sub.add_parser(name, help=f"{help_text} [not available yet]")
            p.set_defaults(func=_not_available(name))
            continue
        module.add_parser(sub, name, help_text)
    return parser


def _not_available(name: str):
    def run(_args: argparse.Namespace) -> int:
        print(f"hand-recon {name}: this subcommand is not implemented in this version", file=sys.stderr)
        return 2

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
