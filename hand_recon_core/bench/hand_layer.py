"""``hand-recon bench hand-layer``: forward time of :class:`~hand_recon_core.hand_model.layer.HandLayer`.

Times one forward pass (shape + pose blend shapes, kinematic chain, skinning, joints) for a batch of random
poses/shapes under ``torch.inference_mode`` after a warm-up, and reports wall-clock milliseconds per call (mean,
median, p95, min), hand-samples per second at the median, and the process CPU time per call (``cpu_p50_ms``;
with ``--threads 1`` this is the uncontended single-core time, robust to other load on a shared machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hand_recon_core.bench.timing import summarize_ms, time_callable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the hand-layer benchmark."""
    parser.add_argument("--batch", type=int, default=64, help="hands per forward pass (default 64)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "float64"))
    parser.add_argument("--model", default="open", help="hand model: 'open', 'mano' or a path")
    parser.add_argument("--pose-repr", default="axis_angle", choices=("axis_angle", "pca", "6d"))
    parser.add_argument("--repeats", type=int, default=200, help="timed calls (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave as is)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark; returns a JSON-serialisable dict of settings and timings."""
    import torch  # here, not at module level: `hand-recon --help` must not import torch

    from hand_recon_core.hand_model.loader import load_hand_model

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    layer = load_hand_model(args.model, pose_repr=args.pose_repr, device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(args.seed)
    b = args.batch
    pose_shape = (b, *layer.hand_pose_dim())
    inputs = {
        "global_orient": 0.5 * torch.randn(b, 3, generator=gen),
        "hand_pose": 0.3 * torch.randn(*pose_shape, generator=gen),
        "betas": torch.randn(b, 10, generator=gen),
        "transl": 0.1 * torch.randn(b, 3, generator=gen),
    }
    inputs = {k: v.to(device=device, dtype=dtype) for k, v in inputs.items()}
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    def step() -> None:
        with torch.inference_mode():
            layer(**inputs)

    seconds = time_callable(step, repeats=args.repeats, warmup=args.warmup, sync=sync)
    summary = summarize_ms(seconds)
    # CPU time of this process per call: equals the wall time on an idle machine with one thread, and is
    # robust to other processes competing for the cores (reported because shared machines are noisy).
    cpu = np.empty(args.repeats)
    for i in range(args.repeats):
        t0 = time.process_time()
        step()
        cpu[i] = time.process_time() - t0
    return {
        "benchmark": "hand-layer",
        "model_id": layer.model_id,
        "num_vertices": layer.num_vertices,
        "batch": b,
        "device": str(device),
        "dtype": args.dtype,
        "pose_repr": args.pose_repr,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        **summary,
        "hands_per_s": float(b / (np.median(seconds))),
        "cpu_p50_ms": float(np.median(cpu) * 1e3),
        "cpu_mean_ms": float(cpu.mean() * 1e3),
    }
