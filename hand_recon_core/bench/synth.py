"""``hand-recon bench synth``: images/s of the synthetic data engine per family and image size.

Each configuration generates samples ``0 .. count - 1`` of one (family, size) stream with
:func:`hand_recon_core.data.synthetic.engine.generate_sample` (scene sampling, posing, appearance, rendering
with anti-aliasing, all ground truth; extras included unless ``--no-extras``) on one thread
(``torch.set_num_threads(--threads)``, default 1). One untimed warm-up sample loads the hand model first. The
hands per image are reported with the speed (the multi family draws 0-10 hands).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--families", nargs="+",
                        default=["single", "interacting", "multi", "hand_object", "truncation"], help="scene families")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sides (px)")
    parser.add_argument("--count", type=int, default=50, help="samples per configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--no-extras", action="store_true", help="sample-format keys only")
    parser.add_argument("--hand-model", default="open")


def run(args: argparse.Namespace) -> dict:
    import torch

    from hand_recon_core.data.synthetic.dataset import canonical_family
    from hand_recon_core.data.synthetic.engine import generate_sample

    torch.set_num_threads(args.threads)
    extras = not args.no_extras
    results: dict = {"threads": args.threads, "count": args.count, "extras": extras, "configs": []}
    for family in (canonical_family(f) for f in args.families):
        for size in args.sizes:
            generate_sample(family, 10**6, args.seed, size, hand_model=args.hand_model, extras=extras)
            times, hands = [], []
            for i in range(args.count):
                t0 = time.perf_counter()
                s = generate_sample(family, i, args.seed, size, hand_model=args.hand_model, extras=extras)
                times.append(time.perf_counter() - t0)
                hands.append(len(s["handedness"]))
            ms = np.asarray(times) * 1e3
            results["configs"].append({
                "family": family, "size": size, "images_per_s": round(1e3 / float(ms.mean()), 2),
                "mean_ms": round(float(ms.mean()), 2), "p50_ms": round(float(np.percentile(ms, 50)), 2),
                "p95_ms": round(float(np.percentile(ms, 95)), 2), "hands_per_image": round(float(np.mean(hands)), 2),
            })
    return results
