"""``hand-recon bench scaling``: single-stage inference time against the number of hands (the single-stage paper's
Fig. 9), compared with a two-stage detect-crop-regress baseline using the same backbone.

For each hand count ``N`` (``--hands``, default 1 2 5 10) one synthetic ``multi``-family image of ``--size``
pixels with exactly ``N`` hands is generated, then two pipelines are timed on it:

* **single-stage**: :class:`hand_recon_core.inference.Pipeline` with the ``single_stage`` method at
  ``input_size = --size`` (the whole pipeline call: letterbox, network, decoding of ``N`` hands with
  ``score_threshold = 0`` and ``max_hands = N`` so exactly ``N`` hands are reconstructed, lifting to the camera
  frame);
* **two-stage**: :class:`hand_recon_core.inference.two_stage.TwoStageBaseline` — a detector network on the
  letterboxed image, then one 224 x 224 crop and one single-hand regressor pass (backbone + MLP + hand layer) per
  hand, placed in the camera frame. Random weights cannot find hands, so after running and decoding the detector
  (for its cost) the scene's ground-truth boxes are cropped.

Both use random weights (time does not depend on them) and the same backbone (``--backbone``). The reported time
is the median (p50) of ``--repeats`` calls after ``--warmup`` calls; ``ratio = two-stage / single-stage``. A PNG
plot (matplotlib) of time against hands is written to ``--plot``.

Example::

    hand-recon bench scaling --hands 1 2 5 10 --size 512 --backbone resnet18 --plot docs/bench_scaling.png
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hands", type=int, nargs="+", default=[1, 2, 5, 10], help="numbers of hands per image")
    parser.add_argument("--size", type=int, default=512, help="image side and single-stage input size, pixels")
    parser.add_argument("--backbone", default="resnet18", choices=("resnet18", "resnet34", "resnet50"),
                        help="backbone of both pipelines (the paper: resnet50)")
    parser.add_argument("--fuse-channels", type=int, default=None,
                        help="single-stage fused-feature width (default: the method's, 256)")
    parser.add_argument("--head-channels", type=int, default=None,
                        help="single-stage encoder / head width (default: the method's, 256)")
    parser.add_argument("--crop-size", type=int, default=224, help="two-stage hand crop side, pixels")
    parser.add_argument("--batch-crops", action="store_true",
                        help="two-stage: regress all crops of a side in one batch (default: one by one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per setting")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--hand-model", default="open")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("bench_scaling.png"), help="output PNG plot")


def _scene(n: int, size: int, seed: int, hand_model: str) -> dict:
    """A ``multi`` sample with exactly ``n`` hands (the family may drop hands it cannot place: try other indices)."""
    from hand_recon_core.data.synthetic import generate_sample

    best = None
    for index in range(40):
        s = generate_sample("multi", index, seed=seed, size=size, hand_model=hand_model, num_hands=(n, n),
                            extent_range=(0.08, 0.3), occluder_prob=0.0, truncation_prob=0.0)
        if len(s["handedness"]) == n:
            return s
        if best is None or len(s["handedness"]) > len(best["handedness"]):
            best = s
    return best


def _plot(path: Path, rows: list[dict], info: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hands = [r["hands"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
    ax.plot(hands, [r["single_stage_ms"] for r in rows], "o-", label="single-stage (one pass)")
    ax.plot(hands, [r["two_stage_ms"] for r in rows], "s--", label="two-stage (detect + crop + regress)")
    for r in rows:
        ax.annotate(f"x{r['ratio']:.1f}", (r["hands"], r["two_stage_ms"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xlabel("hands in the image")
    ax.set_ylabel("time per image, ms (p50)")
    top = max(max(r["two_stage_ms"], r["single_stage_ms"]) for r in rows)
    ax.set_ylim(0, 1.15 * top)
    ax.set_title(f"{info['size']}x{info['size']}, {info['backbone']}, {info['device']} "
                 f"({info['threads']} thread{'s' if info['threads'] != 1 else ''})", fontsize=9)
    ax.set_xticks(hands)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="xR: two-stage / single-stage time", title_fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from hand_recon_core.bench.timing import summarize_ms, time_callable
    from hand_recon_core.inference.pipeline import Pipeline
    from hand_recon_core.inference.two_stage import TwoStageBaseline

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    print("weights are random by design (timing only); the RANDOM WEIGHTS warnings are silenced", file=sys.stderr)
    log = logging.getLogger("hand_recon_core.inference")
    initial_level = log.level
    log.setLevel(logging.ERROR)
    initial_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device == "cuda" else None
    rows = []
    method_kwargs = {"input_size": args.size}
    for key in ("fuse_channels", "head_channels"):
        if getattr(args, key) is not None:
            method_kwargs[key] = getattr(args, key)
    try:
        torch.manual_seed(args.seed)
        baseline = TwoStageBaseline(args.backbone, args.hand_model, input_size=args.size, crop_size=args.crop_size,
                                    device=args.device, batch_crops=args.batch_crops)
        for n in args.hands:
            sample = _scene(n, args.size, args.seed, args.hand_model)
            image, K = sample["image"], sample["K"]
            pipeline = Pipeline.from_config("single_stage", args.hand_model, device=args.device,
                                            method_kwargs=method_kwargs, backbone=args.backbone,
                                            seed=args.seed, score_threshold=0.0, max_hands=n)
            decoded = len(pipeline(image, K).hands)
            single = summarize_ms(time_callable(lambda p=pipeline, im=image, k=K: p(im, k), repeats=args.repeats,
                                                warmup=args.warmup, sync=sync))
            boxes, sides = sample["bbox"], sample["handedness"].tolist()
            two = summarize_ms(time_callable(lambda im=image, k=K, b=boxes, s=sides: baseline(im, k, b, s),
                                             repeats=args.repeats, warmup=args.warmup, sync=sync))
            row = {"hands": n, "hands_in_scene": len(sides), "hands_decoded": decoded,
                   "single_stage_ms": round(single["p50_ms"], 1), "two_stage_ms": round(two["p50_ms"], 1),
                   "single_stage_mean_ms": round(single["mean_ms"], 1), "two_stage_mean_ms": round(two["mean_ms"], 1)}
            row["ratio"] = round(row["two_stage_ms"] / row["single_stage_ms"], 2)
            rows.append(row)
            print(f"hands {n:3d}: single-stage {row['single_stage_ms']:8.1f} ms   two-stage {row['two_stage_ms']:8.1f} "
                  f"ms   ratio {row['ratio']:.2f}", file=sys.stderr)
            del pipeline
    finally:
        torch.set_num_threads(initial_threads)
        log.setLevel(initial_level)
    info = {"size": args.size, "backbone": args.backbone, "single_stage_kwargs": method_kwargs,
            "device": args.device, "threads": args.threads,
            "crop_size": args.crop_size, "batch_crops": args.batch_crops, "repeats": args.repeats,
            "cpu_count": os.cpu_count(), "statistic": "p50"}
    single = np.array([r["single_stage_ms"] for r in rows])
    two = np.array([r["two_stage_ms"] for r in rows])
    hands = np.array([r["hands"] for r in rows], np.float64)
    slopes = {}
    if len(rows) >= 2:
        slopes = {"single_stage_ms_per_hand": round(float(np.polyfit(hands, single, 1)[0]), 2),
                  "two_stage_ms_per_hand": round(float(np.polyfit(hands, two, 1)[0]), 2)}
    _plot(args.plot, rows, info)
    return {**info, "results": rows, **slopes, "plot": str(args.plot)}
