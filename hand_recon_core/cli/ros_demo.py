"""``hand-recon ros-demo``: the ROS 2 demo in one process (no ``launch`` needed), recorded to MCAP and video.

Runs ``image_source_node`` (moving synthetic hands by default) and ``hand_recon_node`` on one rclpy executor for
a number of seconds or frames, records every output topic (``~/hands``, ``~/markers``, ``~/overlay``,
``~/faces/*``, ``/tf``, ``/diagnostics``, the camera topics) to ``<out>/hand_recon_demo.mcap`` (open it in
Foxglove Studio, or ``ros2 bag play`` it) and the overlay images to ``<out>/overlay.mp4``, then prints where they
are. On a ROS 2 install ``ros2 launch hand_recon_ros demo.launch.py`` runs the same nodes with RViz.

Model (``--model auto``, the default): the network (``hand_recon_core.inference.Pipeline``) when a checkpoint is
given or packaged (``hand_recon_core/assets/detector_default.pt``); otherwise, with the synthetic source, the
synthetic ground truth replayed through the node (``oracle``: every ROS output with known hands, no network;
a randomly initialised network would only show noise). ``--model pipeline`` forces the network (random weights
without a checkpoint, said loudly).
ROS 2 is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers, name: str, help_text: str) -> None:
    """Register ``hand-recon ros-demo`` (the module docstring is its description)."""
    p = subparsers.add_parser(name, help=help_text, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="run time in seconds (default 8)")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames instead of --seconds")
    p.add_argument("--rate", type=float, default=10.0, help="source frame rate in Hz (default 10)")
    p.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"), help="image size")
    p.add_argument("--source", default="synthetic",
                   help="synthetic[:<scene>], a video file, an image folder, camera:<index> or /dev/videoN")
    p.add_argument("--model", choices=("auto", "oracle", "pipeline"), default="auto",
                   help="auto: the network when a checkpoint is given or packaged, else (synthetic source) the "
                        "ground truth replayed through the node")
    p.add_argument("--checkpoint", default="", help="model checkpoint (implies --model pipeline under auto)")
    p.add_argument("--method", default="", help="method name with random weights (testing)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime", "tensorrt"))
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="extra node parameter (repeatable), e.g. --param publish_joint_frames=true")
    p.add_argument("--video", choices=("mp4", "gif"), default="mp4", help="overlay video format")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.set_defaults(func=run)


def _parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _packaged_detector() -> bool:
    """True when the packaged default detector checkpoint exists (then ``auto`` runs the network)."""
    from hand_recon_core.inference.config import DEFAULT_ASSET_NAMES
    from hand_recon_core.inference.pipeline import assets_dir

    return (assets_dir() / DEFAULT_ASSET_NAMES["detector"]).is_file()


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status (0: frames were processed and recorded)."""
    try:
        from hand_recon_ros.demo import run_demo
    except ImportError as exc:  # ROS 2 or the built messages missing
        print(f"hand-recon ros-demo: ROS 2 is not available ({exc}); run scripts/setup.sh and "
              "`source .ros_ws/env.sh` first", file=sys.stderr)
        return 2
    model = args.model
    if model == "auto":
        model = "oracle" if (args.source.startswith("synthetic") and not (args.checkpoint or args.method)
                             and not _packaged_detector()) else "pipeline"
    if model == "oracle" and not args.source.startswith("synthetic"):
        print("hand-recon ros-demo: --model oracle needs the synthetic source (it replays its ground truth)",
              file=sys.stderr)
        return 2
    params = {"model.checkpoint": args.checkpoint, "model.method": args.method, "model.device": args.device,
              "model.backend": args.backend}
    for item in args.param:
        if "=" not in item:
            print(f"hand-recon ros-demo: --param wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        key, value = item.split("=", 1)
        params[key.strip()] = _parse_value(value.strip())
    try:
        result = run_demo(args.out, seconds=args.seconds, frames=args.frames, rate=args.rate, width=args.size[0],
                          height=args.size[1], source=args.source, model=model, params=params,
                          video_format=args.video)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"hand-recon ros-demo: {exc}", file=sys.stderr)
        return 1
    print(f"[ros-demo] {result.frames_published} frames published, {result.frames_processed} processed")
    for topic, n in sorted(result.counts.items()):
        print(f"[ros-demo]   {topic}: {n} messages")
    for stage in ("ros_layer", "model", "end_to_end"):
        if stage in result.latency_ms:
            p50, p95 = result.latency_ms[stage]
            print(f"[ros-demo]   latency {stage}: p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    print(f"[ros-demo] MCAP recording: {result.mcap.resolve()}")
    print(f"[ros-demo] overlay video:  {result.video.resolve() if result.video else '(no overlay frame)'}")
    print(f"[ros-demo] summary:        {result.summary.resolve()}")
    return 0 if result.frames_processed > 0 else 1
