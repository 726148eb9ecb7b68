"""``hand-recon bench refiner``: frames per second of a two-hand refiner for T = 1, 2, 3 refinement stages.

One timed call is the network's ``forward(batch)`` in eval mode under ``torch.inference_mode`` (backbone, every
refinement stage and the hand layers), for ``--batch`` crops (default 1: one interacting pair per call, the
pipeline's case); ``fps`` = crops per second = ``batch / mean time`` and ``fps_p50`` from the median time (the
robust figure on a shared machine). The batch is one synthetic two-hand scene
encoded by the method itself (``encode_targets`` + ``collate``, not timed), so any registered refiner whose
constructor takes ``num_stages`` can be measured. Weights are random (speed does not depend on them).

CPU runs use 1 thread and all threads (``os.cpu_count()``) unless ``--threads`` is given; CUDA runs are added
when CUDA is available (``--device auto``), with ``torch.cuda.synchronize`` before the clock stops.

Example::

    hand-recon bench refiner --method dir --stages 1 2 3 --config config/dir_lite.yaml
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="dir", help="registered refiner method (its kwargs take num_stages)")
    parser.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3], help="numbers of refinement stages T")
    parser.add_argument("--config", default=None,
                        help="experiment YAML whose method.kwargs / backbone / hand_model are used (default: the "
                             "method's defaults)")
    parser.add_argument("--backbone", default=None, help="override the backbone (resnet18 | resnet34 | resnet50)")
    parser.add_argument("--batch", type=int, default=1, help="crops per call")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="CPU thread counts to time (default: 1 and os.cpu_count())")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: the CPU, plus CUDA when available")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument("--seed", type=int, default=0)


def _setup(args: argparse.Namespace, num_stages: int):
    """(method, model, batch) for ``num_stages`` stages."""
    import torch

    from hand_recon_core.data.synthetic.engine import generate_sample
    from hand_recon_core.models.registry import create_method
    from hand_recon_core.training.config import ExperimentConfig, load_config

    cfg = load_config(args.config) if args.config else ExperimentConfig(experiment="bench")
    if args.backbone:
        cfg.backbone.name = args.backbone
    cfg.backbone.pretrained = None
    method = create_method(args.method, {**dict(cfg.method.kwargs), "num_stages": num_stages})
    torch.manual_seed(args.seed)
    model = method.build(cfg, cfg.hand_model).eval()
    sample = generate_sample("interacting", 0, seed=args.seed, size=256, hand_model=cfg.hand_model, extras=True)
    batch = method.collate([method.encode_targets(sample)] * args.batch)
    return method, model, batch, cfg


def run(args: argparse.Namespace) -> dict:
    import torch

    from hand_recon_core.bench.timing import summarize_ms, time_callable
    from hand_recon_core.training.engine import move_to_device

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    devices = [] if args.device == "cuda" else ["cpu"]
    if args.device != "cpu" and torch.cuda.is_available():
        devices.append("cuda")
    threads = args.threads or sorted({1, os.cpu_count() or 1})
    initial_threads = torch.get_num_threads()
    rows = []
    info: dict = {}
    try:
        for num_stages in args.stages:
            method, model, batch, cfg = _setup(args, num_stages)
            info = {"method": args.method, "config": args.config, "backbone": cfg.backbone.name or
                    getattr(method, "backbone", None), "hand_model": cfg.hand_model,
                    "image_size": getattr(method, "image_size", None), "batch": args.batch}
            params = sum(p.numel() for p in model.parameters())
            for device in devices:
                dev = torch.device(device)
                m = model.to(dev)
                b = move_to_device(batch, dev)
                sync = torch.cuda.synchronize if device == "cuda" else None
                for n in threads if device == "cpu" else [None]:
                    if n is not None:
                        torch.set_num_threads(n)
                    with torch.inference_mode():
                        stats = summarize_ms(time_callable(lambda m=m, b=b: m(b), repeats=args.repeats,
                                                           warmup=args.warmup, sync=sync))
                    rows.append({
                        "stages": num_stages, "device": device if device == "cpu" else torch.cuda.get_device_name(dev),
                        "threads": n, "params_millions": round(params / 1e6, 2),
                        "fps": round(args.batch * 1e3 / stats["mean_ms"], 2),
                        "fps_p50": round(args.batch * 1e3 / stats["p50_ms"], 2),
                        **{k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()},
                    })
    finally:
        torch.set_num_threads(initial_threads)
    return {**info, "cpu_count": os.cpu_count(), "results": rows}
