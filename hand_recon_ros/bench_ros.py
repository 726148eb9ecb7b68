"""``hand-recon bench ros``: the latency the ROS layer adds, image received -> HandMeshArray published.

A camera node publishes 640 x 480 rgb8 images with their CameraInfo; ``hand_recon_node`` runs with a
:class:`~hand_recon_ros.fake_pipeline.PrecomputedPipeline` that returns a two-hand HandFrame (806-vertex hands of
the synthetic engine) instantly, so the model time is ~0 and what remains is the node's own work; a third node
subscribes to ``~/hands``. Camera and subscriber run in a second process, as in a deployment, so the node's
process holds only the node (its executor and worker threads); every message goes through DDS.

The node's timestamp trace (``time.perf_counter()`` at each stage of every frame) gives

* ``ros_layer``: published - received - model time (the target: p50 and p95 < 2 ms), split into
  ``camera_info_wait`` (an image waits up to ``sync.wait`` for the CameraInfo of its stamp), ``queue`` (hand-off to
  the worker thread), ``convert`` (Image -> RGB view + intrinsics), ``post`` (score filter, tracking + smoothing,
  HandMeshArray fill) and ``publish``; ``ros_layer_without_camera_info_wait`` leaves the first out (it measures
  the transport's ordering of the two topics, not the node's work);
* ``outputs_after_hands``: TF + markers published after the HandMeshArray (not part of the target);
* transport: ``dds_in`` (camera publish -> node callback, a 921 kB image) and ``dds_out`` (node publish ->
  subscriber callback), and ``loop`` (camera publish -> HandMeshArray received).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hand-recon bench ros``."""
    parser.add_argument("--frames", type=int, default=300, help="measured frames (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="frames before measuring (default 30)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz (default 30)")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--no-tracking", action="store_true", help="turn tracking and smoothing off")
    parser.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable",
                        help="image QoS (best effort drops large images between processes with default Fast DDS "
                             "settings; default reliable)")
    parser.add_argument("--target-ms", type=float, default=2.0, help="target of the ros_layer p50 / p95")


def _stats(values: list[float]) -> dict:
    a = np.asarray(values, np.float64)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 4),
            "p95_ms": round(float(np.percentile(a, 95)), 4), "max_ms": round(float(a.max()), 4)}


def _camera_process(namespace: str, image: np.ndarray, K: np.ndarray, rate: float, total: int, best_effort: bool,
                    conn) -> None:
    """The camera and the HandMeshArray subscriber, in their own process (as in a deployment).

    Publishes ``total`` frames at ``rate`` once told to, then sends back ``(published, received)``
    ``time.perf_counter`` times by stamp (CLOCK_MONOTONIC: comparable across processes).
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from hand_recon_ros.image_conversion import rgb_to_image_msg
    from hand_recon_ros.image_source_node import camera_info_msg
    from hand_recon_ros.msg import HandMeshArray
    from hand_recon_ros.node_main import BackgroundSpin
    from hand_recon_ros.recon_node import GIL_SWITCH_INTERVAL_S
    from hand_recon_ros.sync import stamp_ns

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    ctx = Context()
    rclpy.init(context=ctx)
    published: dict[int, float] = {}
    received: dict[int, float] = {}
    cam = Node("bench_camera", context=ctx, namespace=namespace)
    sink = Node("bench_sink", context=ctx, namespace=namespace)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE)
    image_pub = cam.create_publisher(Image, "image", qos)
    info_pub = cam.create_publisher(CameraInfo, "camera_info", qos)
    sub = sink.create_subscription(HandMeshArray, "hand_recon_node/hands",
                                   lambda m: received.__setitem__(stamp_ns(m), time.perf_counter()),
                                   QoSProfile(depth=50))
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(cam)
    executor.add_node(sink)
    spin = BackgroundSpin(executor)
    try:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and (image_pub.get_subscription_count() < 1
                                               or sub.get_publisher_count() < 1):
            time.sleep(0.02)
        conn.send("ready")
        if conn.recv() != "go":
            return
        height, width = image.shape[:2]
        msg = rgb_to_image_msg(image, Header(frame_id="camera_color_optical_frame"))
        t_next = time.perf_counter()
        for i in range(total):
            header = Header(frame_id="camera_color_optical_frame")
            t_stamp = 1_000_000_000_000 + int(round(i * 1e9 / rate))  # stamps of a camera running at `rate`
            header.stamp.sec, header.stamp.nanosec = divmod(t_stamp, 1_000_000_000)
            msg.header = header
            info = camera_info_msg(K, width, height, header)
            t_next += 1.0 / rate
            time.sleep(max(0.0, t_next - time.perf_counter()))
            info_pub.publish(info)
            published[stamp_ns(msg)] = time.perf_counter()
            image_pub.publish(msg)
        end = time.monotonic() + 3.0
        while time.monotonic() < end and len(received) < total:
            time.sleep(0.02)
        conn.send((published, dict(received)))
    finally:
        spin.stop()
        executor.shutdown()
        cam.destroy_node()
        sink.destroy_node()
        rclpy.try_shutdown(context=ctx)


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark (module docstring); returns the figures as a JSON-ready dict."""
    import multiprocessing

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from hand_recon_ros.fake_pipeline import PrecomputedPipeline
    from hand_recon_ros.node_main import BackgroundSpin
    from hand_recon_ros.recon_node import GIL_SWITCH_INTERVAL_S, HandReconNode
    from hand_recon_ros.sources import SyntheticHandsSource

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # as the node's executable does
    width, height = args.size
    frame = SyntheticHandsSource(width, height).render(0)
    pipeline = PrecomputedPipeline(frame.truth)
    total = args.warmup + args.frames
    ns = f"bench_ros_{int(time.time() * 1e3) % 1_000_000}"
    mp = multiprocessing.get_context("spawn")
    parent_conn, child_conn = mp.Pipe()
    child = mp.Process(target=_camera_process, daemon=True,
                       args=(ns, frame.image, frame.K, args.rate, total, args.qos == "best_effort", child_conn))
    child.start()
    ctx = Context()
    rclpy.init(context=ctx)
    node = None
    executor = None
    spin = None
    try:
        params = [Parameter("tracking.enabled", value=not args.no_tracking),
                  Parameter("smoothing.enabled", value=not args.no_tracking),
                  Parameter("qos.reliability", value=args.qos)]
        node = HandReconNode("hand_recon_node", context=ctx, namespace=ns, parameter_overrides=params,
                             pipeline_factory=lambda cfg: pipeline, trace=True)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        spin = BackgroundSpin(executor)
        if not parent_conn.poll(60.0) or parent_conn.recv() != "ready":
            raise RuntimeError("the camera process did not start")
        parent_conn.send("go")
        if not parent_conn.poll(total / args.rate + 30.0):
            raise RuntimeError("the camera process did not report")
        published, received = parent_conn.recv()
        trace = [t for t in list(node.trace) if t["seq"] > args.warmup]
        processed, dropped = node.counters["processed"], node.slot.dropped
    finally:
        if spin is not None:
            spin.stop()
        if node is not None:
            node.close()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        child.join(timeout=10.0)
        if child.is_alive():
            child.terminate()
        sys.setswitchinterval(switch_interval)

    def ms(a: float, b: float) -> float:
        return (b - a) * 1e3

    first = min((t["stamp_ns"] for t in trace), default=0)
    layer = [ms(t["received"], t["published"]) - ms(t["converted"], t["model_done"]) for t in trace]
    own = [ms(t["ready"], t["published"]) - ms(t["converted"], t["model_done"]) for t in trace]
    result = {
        "image_size": [width, height],
        "hands_per_frame": len(frame.truth.hands),
        "vertices_per_hand": int(frame.truth.hands[0].vertices_3d.shape[0]),
        "rate_hz": args.rate,
        "frames_published": total,
        "frames_processed": processed,
        "frames_dropped": dropped,
        "hands_messages_received": len(received),
        "tracking": not args.no_tracking,
        "image_qos": args.qos,
        "ros_layer": _stats(layer),
        "ros_layer_without_camera_info_wait": _stats(own),
        "intrinsics_sources": {k: sum(t["intrinsics"] == k for t in trace)
                               for k in sorted({t["intrinsics"] for t in trace})},
        "stages": {
            "camera_info_wait": _stats([ms(t["received"], t["ready"]) for t in trace]),
            "queue": _stats([ms(t["ready"], t["taken"]) for t in trace]),
            "convert": _stats([ms(t["taken"], t["converted"]) for t in trace]),
            "model_fake": _stats([ms(t["converted"], t["model_done"]) for t in trace]),
            "post": _stats([ms(t["model_done"], t["filled"]) for t in trace]),
            "publish": _stats([ms(t["filled"], t["published"]) for t in trace]),
            "outputs_after_hands": _stats([ms(t["published"], t["done"]) for t in trace]),
        },
        "transport": {
            "dds_in": _stats([ms(published[t["stamp_ns"]], t["received"]) for t in trace
                              if t["stamp_ns"] in published]),
            "dds_out": _stats([ms(t["published"], received[t["stamp_ns"]]) for t in trace
                               if t["stamp_ns"] in received]),
            "loop": _stats([ms(published[k], received[k]) for k in received if k in published and k >= first]),
        },
        "target_ms": args.target_ms,
    }
    for key in ("ros_layer", "ros_layer_without_camera_info_wait"):
        lay = result[key]
        result[f"{key}_meets_target"] = bool(lay.get("n") and lay["p50_ms"] < args.target_ms
                                             and lay["p95_ms"] < args.target_ms)
    return result
