"""How much of the 3D hand do its 2D keypoints determine on the synthetic crops? An MLP lifting probe.

    python training/lifting_probe.py --train data/cpu/single_train_a data/cpu/single_train_b \
        --test data/cpu/single_test [--noise 0 4 10] [--steps 3000]

Reads only the labels of synthetic shards (no images): 2D keypoints (pixels), root-relative 3D joints (metres),
handedness. Input: keypoints relative to the wrist, divided by their largest distance to it, plus the handedness;
output: the 21 root-relative joints. For each keypoint noise level (Gaussian, pixels per coordinate, added to
training and test inputs) it trains a 2 x 512 MLP (Adam 1e-3, batch 256, mean joint distance loss) and prints the
held-out root-relative MPJPE, the mean-pose baseline's and the global rotation error
(:func:`hand_recon_core.metrics.rotation_error_deg`). The figures motivate the single-stage keypoint lifter
(``training/results/OBSERVATIONS.md``).
"""

from __future__ import annotations

import argparse
import glob
import time

import numpy as np
import torch

from hand_recon_core.metrics import rotation_error_deg


def load_labels(dirs: list[str], limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 21, 2) keypoints, (N, 21, 3) joints, (N,) handedness of the fully annotated hands in the shards."""
    kps, joints, sides = [], [], []
    for d in dirs:
        for f in sorted(glob.glob(f"{d}/shard_*.npz")):
            with np.load(f, allow_pickle=False) as z:
                for i in sorted({k.split(".")[0] for k in z.files}):
                    if z[f"{i}.joint_valid"].min() <= 0 or len(z[f"{i}.handedness"]) != 1:
                        continue
                    kps.append(z[f"{i}.keypoints_2d"][0])
                    joints.append(z[f"{i}.joints_3d"][0])
                    sides.append(z[f"{i}.handedness"][0])
            if len(kps) >= limit:
                return np.array(kps), np.array(joints), np.array(sides)
    return np.array(kps), np.array(joints), np.array(sides)


def features(kp: np.ndarray, side: np.ndarray) -> np.ndarray:
    """(N, 43) float32: wrist-relative keypoints over their largest wrist distance, then +1 right / -1 left."""
    rel = kp - kp[:, :1]
    rel = rel / (np.linalg.norm(rel, axis=-1).max(axis=1)[:, None, None] + 1e-6)
    return np.concatenate([rel.reshape(len(rel), -1), 1.0 - 2.0 * side[:, None]], axis=1).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="+", required=True, help="training shard directories")
    ap.add_argument("--test", nargs="+", required=True, help="held-out shard directories")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 4.0, 10.0], help="keypoint noise, pixels")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--limit", type=int, default=24000, help="most training hands read")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    kp_tr, j_tr, s_tr = load_labels(args.train, args.limit)
    kp_te, j_te, s_te = load_labels(args.test, args.limit)
    y_tr = torch.from_numpy((j_tr - j_tr[:, :1]).astype(np.float32))
    y_te = j_te - j_te[:, :1]
    blob = np.linalg.norm(y_tr.numpy().mean(0) - y_te, axis=-1).mean() * 1000
    print(f"{len(kp_tr)} training hands, {len(kp_te)} held-out hands; mean-pose baseline {blob:.1f} mm")
    for noise in args.noise:
        rng = np.random.default_rng(0)
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(43, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                  torch.nn.ReLU(), torch.nn.Linear(512, 63))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        start = time.time()
        for _ in range(args.steps):
            idx = rng.integers(0, len(kp_tr), 256)
            x = features(kp_tr[idx] + rng.normal(scale=noise, size=kp_tr[idx].shape), s_tr[idx])
            loss = (net(torch.from_numpy(x)).reshape(-1, 21, 3) - y_tr[idx]).norm(dim=-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        test_rng = np.random.default_rng(1)
        with torch.no_grad():
            x = features(kp_te + test_rng.normal(scale=noise, size=kp_te.shape), s_te)
            pred = net(torch.from_numpy(x)).reshape(-1, 21, 3).numpy()
        rot = rotation_error_deg(pred, y_te)
        print(f"noise {noise:4.1f} px: MPJPE {np.linalg.norm(pred - y_te, axis=-1).mean() * 1000:.1f} mm, rotation "
              f"error mean {rot.mean():.1f} / median {np.median(rot):.1f} deg, < 30 deg {np.mean(rot < 30):.2f} "
              f"({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
