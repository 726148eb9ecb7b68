"""How well a single-stage checkpoint's 2D keypoint-heatmap branch localises joints on held-out crops.

    python training/heatmap_keypoints.py runs/cpu/single_stage_stage0/checkpoints/step_00001000.pt \
        [--count 128] [--seed 1000]

Takes the arg-max cell of each of the 21 heatmaps (stride 4, cell centre ``4 x + 1.5`` in input pixels) on
``synthetic-single`` crops generated with a seed disjoint from training, and prints the mean / median pixel error
and PCK@10px over the visible joints, next to the same numbers for a constant guess (each joint's mean position
over the set). Used for the stage-0 figure in ``training/results/OBSERVATIONS.md``.
"""

from __future__ import annotations

import argparse

import torch

from hand_recon_core.models.heads.center import cell_to_pixel
from hand_recon_core.models.single_stage import KEYPOINT_STRIDE


def heatmap_argmax_pixels(heatmaps: torch.Tensor, stride: int = KEYPOINT_STRIDE) -> torch.Tensor:
    """(B, J, H, W) heatmap logits -> (B, J, 2) pixel ``(x, y)`` of each map's maximum (cell centres)."""
    b, j, _, w = heatmaps.shape
    idx = heatmaps.reshape(b, j, -1).argmax(-1)
    return cell_to_pixel(torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], dim=-1), stride)


def keypoint_errors(pred: torch.Tensor, gt: torch.Tensor, ok: torch.Tensor) -> dict[str, float]:
    """Errors of ``pred`` vs ``gt`` (N, J, 2) pixels over the joints where ``ok`` (N, J), and of the constant guess
    (each joint's mean ground-truth position): ``mean``, ``median``, ``pck10`` and ``const_*`` the same."""
    err = torch.linalg.vector_norm(pred - gt, dim=-1)[ok]
    w = ok.float()[..., None]
    mean_pos = (gt * w).sum(0) / w.sum(0).clamp_min(1.0)  # (J, 2)
    const = torch.linalg.vector_norm(gt - mean_pos, dim=-1)[ok]
    return {"mean": float(err.mean()), "median": float(err.median()), "pck10": float((err < 10).float().mean()),
            "const_mean": float(const.mean()), "const_pck10": float((const < 10).float().mean()),
            "joints": int(ok.sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="single-stage training checkpoint")
    ap.add_argument("--count", type=int, default=128, help="held-out crops (default 128)")
    ap.add_argument("--seed", type=int, default=1000, help="crop stream seed (default 1000, disjoint from training)")
    args = ap.parse_args(argv)

    from hand_recon_core.data.build import build_dataset
    from hand_recon_core.training.evaluation import load_trained

    _, method, net, _ = load_trained(args.checkpoint, method="single_stage",
                                     overrides=["method.kwargs.init_weights=null"])  # the checkpoint has them all
    ds = build_dataset({"name": "synthetic-single",
                        "kwargs": {"count": args.count, "size": method.input_size, "seed": args.seed}})
    preds, gts, oks = [], [], []
    with torch.no_grad():
        for start in range(0, args.count, 32):
            batch = method.collate([method.encode_targets(ds[i]) for i in range(start, min(start + 32, args.count))])
            maps = net.forward_maps(net.normalize(batch["net_image"]))
            if "keypoints" not in maps:
                raise SystemExit(f"{args.checkpoint}: this network has no keypoint-heatmap branch")
            preds.append(heatmap_argmax_pixels(maps["keypoints"].float()))
            gts.append(batch["keypoints_2d"].float())
            oks.append((batch["joint_valid"] > 0) & (batch["joint_visible"] > 0))
    r = keypoint_errors(torch.cat(preds), torch.cat(gts), torch.cat(oks))
    print(f"{args.count} crops, {r['joints']} visible joints: heatmap arg-max {r['mean']:.1f} px mean, "
          f"{r['median']:.1f} px median, PCK@10px {r['pck10']:.2f}; constant guess {r['const_mean']:.1f} px, "
          f"PCK@10px {r['const_pck10']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
