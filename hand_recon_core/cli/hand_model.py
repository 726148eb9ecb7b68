"""``hand-recon hand-model``: generate, inspect and render hand models.

Subcommands::

    hand-recon hand-model generate [--out PATH] [--check]
        Regenerate the open hand model (default: the packaged asset hand_recon_core/assets/open_hand_v1.npz).
        With --check, compare with the existing file instead of writing it (exit 1 when different; the last
        float32 bits may move with the BLAS thread count, which --check accepts).
    hand-recon hand-model info [--model open|mano|PATH] [--side right|left] [--json FILE]
        Print the model's id, sizes, closedness, dimensions and fingertip convention.
    hand-recon hand-model render-grid [--model ...] [--out docs/open_hand_grid.png] [--size 256]
        Render both hands in eight named poses (three-quarter view) as a labelled PNG grid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers, name: str, help_text: str) -> None:
    """Register ``hand-model`` and its subcommands on ``subparsers``."""
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="hand_model_command", metavar="SUBCOMMAND")

    gen = sub.add_parser("generate", help="regenerate the open hand model asset (deterministic)")
    gen.add_argument("--out", type=Path, default=None,
                     help="output .npz (default: the packaged asset hand_recon_core/assets/open_hand_v1.npz)")
    gen.add_argument("--check", action="store_true",
                     help="do not write; exit 1 if the regenerated model differs from --out")
    gen.set_defaults(func=_generate)

    info = sub.add_parser("info", help="print a summary of a hand model")
    info.add_argument("--model", default="open", help="'open', 'mano' or a path (default: open)")
    info.add_argument("--side", default="right", choices=("right", "left"))
    info.add_argument("--json", type=Path, default=None, help="also write the summary to this JSON file")
    info.set_defaults(func=_info)

    grid = sub.add_parser("render-grid", help="render both hands in eight poses as a labelled PNG")
    grid.add_argument("--model", default="open", help="'open', 'mano' or a path (default: open)")
    grid.add_argument("--out", type=Path, default=Path("docs/open_hand_grid.png"))
    grid.add_argument("--size", type=int, default=256, help="pixels per grid cell (default 256)")
    grid.set_defaults(func=_render_grid)

    parser.set_defaults(func=lambda _a: (parser.print_help(), 0)[1])


def _generate(args: argparse.Namespace) -> int:
    from hand_recon_core.hand_model.loader import OPEN_MODEL_PATH
    from hand_recon_core.hand_model.model_data import compare_npz, npz_bytes
    from hand_recon_core.hand_model.open_model.generate import generate_open_model

    out = args.out or OPEN_MODEL_PATH
    data = generate_open_model()
    arrays = data.to_arrays()
    if args.check:
        if not out.is_file():
            print(f"{out}: missing")
            return 1
        verdict, detail = compare_npz(out.read_bytes(), arrays)
        print(f"{out}: {verdict.upper() if verdict == 'different' else verdict} (regenerated model)"
              + (f": {detail}" if detail else ""))
        return 1 if verdict == "different" else 0
    blob = npz_bytes(arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    print(f"wrote {out} ({len(blob) / 1024:.0f} KiB): {data.model_id}, {data.num_vertices} vertices, "
          f"{data.num_faces} faces")
    return 0


def model_summary(name_or_path: str, side: str) -> dict:
    """Summary dict of a hand model (ids, sizes, mesh checks, dimensions in metres)."""
    import numpy as np

    from hand_recon_core.hand_model.constants import FINGER_JOINTS
    from hand_recon_core.hand_model.loader import load_hand_model_data
    from hand_recon_core.hand_model.mesh_checks import edge_face_counts, is_closed_manifold, signed_volume

    data = load_hand_model_data(name_or_path, side)
    v = np.asarray(data.v_template, dtype=np.float64)
    joints = data.rest_joints()
    tips = v[data.tip_vertex_ids]
    middle_tip = tips[2]
    mcp = joints[[FINGER_JOINTS[f][0] for f in ("index", "middle", "ring", "pinky")]]
    _, counts = edge_face_counts(data.faces)
    return {
        "model_id": data.model_id,
        "side": data.side,
        "num_vertices": data.num_vertices,
        "num_faces": data.num_faces,
        "closed_manifold": bool(is_closed_manifold(data.faces)),
        "boundary_edges": int((counts == 1).sum()),
        "signed_volume_m3": signed_volume(v, data.faces),
        "hand_length_m": float(np.linalg.norm(middle_tip - joints[0])),
        "knuckle_span_m": float(np.linalg.norm(mcp[0] - mcp[3])),
        "tip_vertex_ids": [int(i) for i in data.tip_vertex_ids],
        "tip_convention": data.tip_convention,
        "has_joint_limits": data.joint_limits is not None,
        "bbox_min_m": [float(x) for x in v.min(axis=0)],
        "bbox_max_m": [float(x) for x in v.max(axis=0)],
    }


def _info(args: argparse.Namespace) -> int:
    summary = model_summary(args.model, args.side)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


def _render_grid(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from hand_recon_core.hand_model.loader import load_hand_model
    from hand_recon_core.hand_model.preview import GRID_POSES, render_pose_grid

    right = load_hand_model(args.model, side="right", dtype=torch.float64)
    left = load_hand_model(args.model, side="left", dtype=torch.float64)
    grid = render_pose_grid(right, left, GRID_POSES, size=args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), grid[:, :, ::-1]):
        print(f"could not write {args.out}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]}): {right.model_id} / {left.model_id}, "
          f"poses {', '.join(label for _, label in GRID_POSES)}")
    return 0
