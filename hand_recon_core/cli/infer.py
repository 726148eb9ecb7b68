"""``hand-recon infer``: run the inference pipeline on an image, an image folder or a video.

Usage::

    hand-recon infer --checkpoint CKPT|default --input IMAGE|FOLDER|VIDEO --out DIR
                     [--refiner CKPT|dir|dgcl] [--backend torch|torch_compile|onnxruntime|tensorrt]
                     [--device cpu|cuda|auto] [--intrinsics FX FY CX CY] [--max-hands N] [--score-threshold T]
                     [--track] [--smooth] [--fps HZ]

For every frame it writes ``DIR/<name>.json`` (:meth:`HandFrame.to_json`: hands with 2D keypoints in pixels, 3D
joints / vertices in metres in the camera frame, timings) and ``DIR/<name>_overlay.png`` (the meshes shaded over
the image plus the 2D skeletons, :func:`hand_recon_core.render.overlay.draw_overlay`). ``<name>`` is the image's
file stem, or ``frame_NNNNNN`` for video frames. ``--checkpoint default`` uses :meth:`Pipeline.default` (the
packaged checkpoints, or random weights with a loud warning); ``--checkpoint default:acr`` the packaged ACR
detector instead of the single-stage one. Without ``--intrinsics`` the pipeline's documented
default camera is used (focal = max(W, H), principal point at the centre). ``--track`` assigns stable track ids
across the frames (a folder is read in sorted order), ``--smooth`` adds One-Euro smoothing (implies ``--track``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

#: Image file suffixes read from a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Video file suffixes (read with OpenCV).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def add_parser(subparsers, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="detector training checkpoint (.pt), or 'default' (packaged checkpoints / random weights; "
                        "'default:acr': the packaged ACR detector)")
    p.add_argument("--input", required=True, type=Path, help="an image, a folder of images or a video file")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--refiner", default=None,
                   help="two-hand refiner checkpoint, or a method name ('dir', 'dgcl') for random weights")
    p.add_argument("--backend", default="torch", choices=("torch", "torch_compile", "onnxruntime", "tensorrt"))
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16"))
    p.add_argument("--allow-fallback", action="store_true",
                   help="fall back to eager torch (with a warning) when the backend is unavailable")
    p.add_argument("--cache-dir", type=Path, default=None, help="ONNX / TensorRT cache folder")
    p.add_argument("--intrinsics", type=float, nargs=4, default=None, metavar=("FX", "FY", "CX", "CY"),
                   help="camera intrinsics in pixels (default: the pipeline's documented default camera)")
    p.add_argument("--max-hands", type=int, default=None, help="keep at most N hands per image")
    p.add_argument("--score-threshold", type=float, default=None, help="minimum detection score")
    p.add_argument("--hand-model", default=None, help="expected hand model (error if the checkpoint differs)")
    p.add_argument("--track", action="store_true", help="assign stable track ids across frames")
    p.add_argument("--smooth", action="store_true", help="One-Euro smoothing of tracked hands (implies --track)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate for --smooth (default: the video's, or 30 for images)")
    p.add_argument("--no-overlay", action="store_true", help="write only the JSON files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _frames(path: Path):
    """``(frame count or None, video fps or None, iterator of (name, (H, W, 3) uint8 RGB))`` of an input."""
    import cv2

    def read(p: Path):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {p}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        return len(files), None, ((p.stem, read(p)) for p in files)
    if not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return 1, None, iter([(path.stem, read(path))])
    if path.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise ValueError(f"cannot open video {path}")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        fps = cap.get(cv2.CAP_PROP_FPS) or None

        def gen():
            i = 0
            try:
                while True:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    yield f"frame_{i:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    i += 1
            finally:
                cap.release()

        return count, fps, gen()
    raise ValueError(f"unsupported input {path}: images {IMAGE_SUFFIXES}, videos {VIDEO_SUFFIXES} or a folder")


def render_frame_overlay(image, frame):
    """(H, W, 3) uint8 RGB overlay of a :class:`HandFrame`: shaded meshes plus 2D skeletons (``mano21`` bones)."""
    from hand_recon_core.hand_model.joint_orders import bone_pairs
    from hand_recon_core.render.overlay import draw_overlay

    hands = frame.hands
    return draw_overlay(image, vertices=[h.vertices_3d for h in hands],
                        faces=[frame.faces[h.handedness] for h in hands], K=frame.K,
                        keypoints=[h.keypoints_2d for h in hands], skeleton=bone_pairs("mano21"))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import json

    import cv2
    import numpy as np

    from hand_recon_core.inference.backends import BackendUnavailableError
    from hand_recon_core.inference.inputs import InputError
    from hand_recon_core.inference.pipeline import Pipeline
    from hand_recon_core.training.checkpoint import CheckpointError, CheckpointMismatchError

    log = logging.getLogger(__name__)
    kwargs = {"backend": args.backend, "max_hands": args.max_hands, "score_threshold": args.score_threshold,
              "allow_fallback": args.allow_fallback, "cache_dir": args.cache_dir, "precision": args.precision}
    try:
        if args.checkpoint == "default" or args.checkpoint.startswith("default:"):
            if args.refiner is not None:
                kwargs["refiner"] = args.refiner
            detector = args.checkpoint.partition(":")[2] or "single_stage"
            pipeline = Pipeline.default(device=args.device, hand_model=args.hand_model or "open", detector=detector,
                                        **kwargs)
        else:
            backend = kwargs.pop("backend")
            pipeline = Pipeline.from_checkpoint(args.checkpoint, args.device, backend, refiner=args.refiner,
                                                hand_model=args.hand_model, **kwargs)
        count, video_fps, frames = _frames(args.input)
    except (BackendUnavailableError, CheckpointError, CheckpointMismatchError, FileNotFoundError, ValueError,
            RuntimeError) as exc:
        log.debug("traceback", exc_info=True)
        print(f"hand-recon infer: error: {exc}", file=sys.stderr)
        return 2
    K = None
    if args.intrinsics is not None:
        fx, fy, cx, cy = args.intrinsics
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    tracker = smoother = None
    if args.track or args.smooth:
        from hand_recon_core.inference.tracking import HandTracker

        tracker = HandTracker()
    if args.smooth:
        from hand_recon_core.inference.smoothing import HandSmoother, OneEuroConfig

        smoother = HandSmoother(OneEuroConfig(rate=args.fps or video_fps or 30.0))
    args.out.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    written = 0
    n_hands = 0
    total_ms = []
    try:
        for name, image in tqdm(frames, total=count, desc="infer", unit="frame", disable=args.quiet):
            frame = pipeline(image, K)
            if tracker is not None:
                frame = tracker.update(frame)
            if smoother is not None:
                frame = smoother.smooth(frame)
            (args.out / f"{name}.json").write_text(json.dumps(frame.to_json()) + "\n")
            if not args.no_overlay:
                overlay = render_frame_overlay(image, frame)
                if not cv2.imwrite(str(args.out / f"{name}_overlay.png"), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)):
                    raise OSError(f"cannot write {args.out / (name + '_overlay.png')}")
            written += 1
            n_hands += len(frame.hands)
            total_ms.append(frame.timings_ms["total"])
    except (InputError, ValueError, OSError) as exc:
        print(f"hand-recon infer: error: {exc}", file=sys.stderr)
        return 2
    summary = {**pipeline.describe(), "frames": written, "hands": n_hands, "out": str(args.out),
               "mean_total_ms": round(float(np.mean(total_ms)), 2) if total_ms else None}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    from hand_recon_core.cli.main import main

    sys.exit(main(["infer", *sys.argv[1:]]))
