"""The ROS 2 demo in one process: image source + reconstruction node + recorder, on one rclpy executor.

What ``ros2 launch hand_recon_ros demo.launch.py`` starts as separate processes (minus RViz) runs here on a
multi-threaded executor; every message still goes through DDS. The recorder writes every output topic to an MCAP
file and the overlay images to a video. Used by ``hand-recon ros-demo`` (``scripts/demo.sh``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Topics of the demo (the launch file uses the same names).
CAMERA_NS = "camera"
NODE_NAME = "hand_recon_node"


@dataclass
class DemoResult:
    """What a demo run produced.

    Attributes:
        mcap: the MCAP file.
        video: the overlay video (None when no overlay frame arrived).
        summary: the summary JSON file.
        frames_published: images published by the source.
        frames_processed: images the node processed.
        counts: messages recorded per topic.
        latency_ms: ``{stage: (p50, p95)}`` of the node.
    """

    mcap: Path
    video: Path | None
    summary: Path
    frames_published: int
    frames_processed: int
    counts: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, tuple[float, float]] = field(default_factory=dict)


def run_demo(out_dir: str | Path = "out/demo", seconds: float = 8.0, frames: int = 0, rate: float = 10.0,
             width: int = 640, height: int = 480, source: str = "synthetic", model: str = "oracle",
             params: dict | None = None, video_format: str = "mp4", log=print) -> DemoResult:
    """Run the demo and record it.

    Args:
        out_dir: output folder (``hand_recon_demo.mcap``, ``overlay.mp4`` / ``.gif``, ``summary.json``).
        seconds: how long to run (after the model is ready).
        frames: stop after this many published frames instead (0: use ``seconds``).
        rate: source frame rate, Hz.
        width: source image width, pixels.
        height: source image height, pixels.
        source: image source specification (see :func:`hand_recon_ros.sources.open_source`).
        model: ``"oracle"`` (the synthetic ground truth, no network) or ``"pipeline"`` (the node's model from
            ``params``: checkpoint / method / packaged default).
        params: node parameters (``{name: value}``, see :mod:`hand_recon_ros.params`).
        video_format: ``"mp4"`` or ``"gif"``.
        log: where progress lines go.

    Returns:
        :class:`DemoResult`.
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from shape_msgs.msg import Mesh
    from tf2_msgs.msg import TFMessage
    from visualization_msgs.msg import MarkerArray

    from hand_recon_ros.fake_pipeline import GroundTruthPipeline
    from hand_recon_ros.image_conversion import image_msg_to_rgb
    from hand_recon_ros.image_source_node import ImageSourceNode
    from hand_recon_ros.msg import HandMeshArray
    from hand_recon_ros.node_main import BackgroundSpin
    from hand_recon_ros.recon_node import GIL_SWITCH_INTERVAL_S, HandReconNode
    from hand_recon_ros.recorder import McapRecorder, VideoRecorder

    if model not in ("oracle", "pipeline"):
        raise ValueError(f"model must be 'oracle' or 'pipeline', got {model!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # as the nodes' executables do (see recon_node)
    ctx = Context()
    rclpy.init(context=ctx)
    nodes = []
    recorder = video = None
    executor = None
    try:
        oracle = GroundTruthPipeline() if model == "oracle" else None
        t0 = time.perf_counter()
        src = ImageSourceNode(
            "image_source", context=ctx, namespace=CAMERA_NS,
            on_frame=(lambda f, m: oracle.register(f.image, f.truth) if f.truth is not None else None)
            if oracle is not None else None,
            parameter_overrides=[Parameter("source", value=source), Parameter("rate", value=float(rate)),
                                 Parameter("width", value=int(width)), Parameter("height", value=int(height)),
                                 Parameter("max_frames", value=int(frames))])
        nodes.append(src)
        src.timer.cancel()  # start publishing once everything is up
        log(f"[ros-demo] source {source} {width}x{height} at {rate} Hz ready in {time.perf_counter() - t0:.1f} s")
        overrides = [Parameter(k, value=v) for k, v in (params or {}).items()]
        node = HandReconNode(NODE_NAME, context=ctx, parameter_overrides=overrides,
                             pipeline_factory=(lambda cfg: oracle) if oracle is not None else None,
                             cli_args=["--ros-args", "-r", f"image:=/{CAMERA_NS}/image",
                                       "-r", f"camera_info:=/{CAMERA_NS}/camera_info"])
        nodes.append(node)
        if node.pipeline is None:
            raise RuntimeError("the reconstruction node did not configure (see the log above)")
        rec = Node("hand_recon_demo_recorder", context=ctx)
        nodes.append(rec)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        base = f"/{NODE_NAME}"
        topics = [(f"/{CAMERA_NS}/image", Image, reliable), (f"/{CAMERA_NS}/camera_info", CameraInfo, reliable),
                  (f"{base}/hands", HandMeshArray, reliable), (f"{base}/markers", MarkerArray, reliable),
                  (f"{base}/overlay", Image, reliable), (f"{base}/faces/right", Mesh, latched),
                  (f"{base}/faces/left", Mesh, latched), ("/tf", TFMessage, QoSProfile(depth=100)),
                  ("/diagnostics", DiagnosticArray, reliable)]
        mcap_path = out / "hand_recon_demo.mcap"
        described = node.pipeline.describe() if hasattr(node.pipeline, "describe") else {}
        if oracle is not None:
            what = "SYNTHETIC GROUND TRUTH replayed through the node - not a reconstruction"
        elif getattr(node.pipeline, "random_weights", False):
            what = "RANDOM WEIGHTS (no trained checkpoint) - meaningless hands"
        else:
            what = f"model: {described.get('detector', '-')}"
        recorder = McapRecorder(rec, mcap_path, topics, metadata={"model": what, **{
            f"pipeline.{k}": v for k, v in described.items() if v is not None}})
        video = VideoRecorder(out / f"overlay.{video_format}", fps=rate,
                              caption=what if (oracle is not None or "RANDOM" in what) else None)
        rec.create_subscription(Image, f"{base}/overlay",
                                lambda m: video.add(np.ascontiguousarray(image_msg_to_rgb(m))), reliable)
        executor = MultiThreadedExecutor(num_threads=4, context=ctx)
        for n in nodes:
            executor.add_node(n)
        spin = BackgroundSpin(executor)
        # let discovery settle so the first frames are not lost
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and (src.image_pub.get_subscription_count() < 2
                                               or node.subscription_count("overlay") < 2):
            time.sleep(0.05)
        src.timer.reset()
        log(f"[ros-demo] running for {f'{frames} frames' if frames else f'{seconds:g} s'} "
            f"(model: {'synthetic ground truth (oracle, no network)' if oracle else 'pipeline'})")
        start = time.monotonic()
        while True:
            time.sleep(0.1)
            if frames and src.finished:
                break
            if not frames and time.monotonic() - start >= seconds:
                break
        src.timer.cancel()
        # drain: let the last frame through the node and the recorder
        drain_end = time.monotonic() + 3.0
        while time.monotonic() < drain_end and (node.slot.pending() or node.counters["processed"]
                                                + node.counters["rejected"] + node.slot.dropped < src.published):
            time.sleep(0.05)
        time.sleep(0.3)
        latency = node.latency.percentiles()
        processed = node.counters["processed"]
        spin.stop()
        node.close()
        executor.shutdown()
        recorder.close()
        video.close()
        video_path = video.path if video.frames else None
        result = DemoResult(mcap=mcap_path, video=video_path, summary=out / "summary.json",
                            frames_published=src.published, frames_processed=processed,
                            counts=dict(recorder.counts), latency_ms=latency)
        result.summary.write_text(json.dumps({
            "model": "oracle" if oracle else "pipeline", "source": source, "rate_hz": rate,
            "size": [width, height], "frames_published": src.published, "frames_processed": processed,
            "frames_dropped": node.slot.dropped, "frames_rejected": node.counters["rejected"],
            "recorded_messages": result.counts, "video_frames": video.frames,
            "latency_ms": {k: {"p50": round(v[0], 3), "p95": round(v[1], 3)} for k, v in latency.items()},
        }, indent=2) + "\n")
        return result
    finally:
        if recorder is not None:
            recorder.close()
        if video is not None:
            video.close()
        if executor is not None:
            executor.shutdown()
        for n in nodes:
            if isinstance(n, HandReconNode):
                n.close()
            n.destroy_node()
        rclpy.try_shutdown(context=ctx)
        sys.setswitchinterval(switch_interval)
