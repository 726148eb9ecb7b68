"""hand_recon_node with real rclpy: synthetic frames with known hands in, every output checked; lifecycle; bad
input; bursts. The model is a GroundTruthPipeline (the Pipeline's call signature, returning the synthetic truth)."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_hands_tf_and_markers_follow_the_known_hands_over_20_frames(harness_factory, synthetic_frames,
                                                                     ground_truth):
    from hand_recon_core.data.sample import LEFT, RIGHT
    from hand_recon_core.data.synthetic.hands import get_hand_models
    from hand_recon_ros.conversions import msg_to_hand

    h = harness_factory(ground_truth, params={"publish_joint_frames": True}, prefix="frames")
    h.wait_connected()
    headers = []
    for i, f in enumerate(synthetic_frames[:20]):
        headers.append(h.publish(f.image, f.K))
        assert h.wait_for(lambda n=i + 1: h.count("hands") >= n, 5.0)
    assert h.wait_for(lambda: h.count("markers") >= 20 and h.count("tf") >= 20, 5.0)

    n_vertices = get_hand_models("open").num_vertices
    hands_msgs = h.received["hands"][:20]
    ids_by_side: dict[int, set] = {RIGHT: set(), LEFT: set()}
    for msg, header, frame in zip(hands_msgs, headers, synthetic_frames):
        assert msg.header.frame_id == header.frame_id == "camera_color_optical_frame"
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (header.stamp.sec, header.stamp.nanosec)
        assert (msg.image_width, msg.image_height) == frame.image.shape[1::-1]
        assert len(msg.hands) == 2
        assert sorted(hm.handedness for hm in msg.hands) == [RIGHT, LEFT]
        for hm in msg.hands:
            hand = msg_to_hand(hm)
            assert hand.vertices.shape == (n_vertices, 3)
            assert hm.header == msg.header
            ids_by_side[hand.handedness].add(hand.id)
            truth = next(t for t in frame.truth.hands if t.handedness == hand.handedness)
            # smoothing lags a moving hand by millimetres, never by centimetres
            assert np.abs(hand.joints - truth.joints_3d).max() < 0.03
    assert all(len(ids) == 1 for ids in ids_by_side.values()), ids_by_side  # stable over 20 frames
    assert ids_by_side[RIGHT] != ids_by_side[LEFT]
    assert h.node.counters["rejected"] == 0 and h.node.counters["errors"] == 0

    # TF: optical frame -> wrist, wrist -> 20 joints, stamped with the image
    last = hands_msgs[-1]
    rid, lid = next(iter(ids_by_side[RIGHT])), next(iter(ids_by_side[LEFT]))
    tf_last = [t for m in h.received["tf"] for t in m.transforms if t.header.stamp == last.header.stamp]
    names = {t.child_frame_id for t in tf_last}
    assert f"{h.ns}_{rid}_right_wrist" in names and f"{h.ns}_{lid}_left_wrist" in names
    assert f"{h.ns}_{lid}_left_index_tip" in names and len(names) == 2 * 21
    wrist = next(t for t in tf_last if t.child_frame_id == f"{h.ns}_{rid}_right_wrist")
    assert wrist.header.frame_id == "camera_color_optical_frame"
    right = msg_to_hand(next(hm for hm in last.hands if hm.handedness == RIGHT))
    tr = wrist.transform.translation
    np.testing.assert_allclose([tr.x, tr.y, tr.z], right.joints[0], atol=1e-6)

    # markers: mesh triangles = faces, joints, bones, labels; ids = track ids
    faces = synthetic_frames[0].truth.faces
    markers = h.received["markers"][19].markers
    mesh = {m.id: m for m in markers if m.ns == "mesh"}
    assert set(mesh) == {rid, lid}
    assert len(mesh[rid].points) == 3 * len(faces[RIGHT]) and len(mesh[lid].points) == 3 * len(faces[LEFT])
    assert mesh[rid].color.a == 1.0 and mesh[rid].color != mesh[lid].color
    assert {m.ns for m in markers} == {"mesh", "joints", "skeleton", "label"}
    assert all(len(m.points) == 21 for m in markers if m.ns == "joints")
    assert all(len(m.points) == 40 for m in markers if m.ns == "skeleton")
    assert all(m.header.stamp == h.received["hands"][19].header.stamp for m in markers)


def test_faces_are_latched_once_per_handedness(harness_factory, synthetic_frames, ground_truth):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from shape_msgs.msg import Mesh

    from hand_recon_core.data.sample import LEFT, RIGHT

    h = harness_factory(ground_truth, prefix="faces")
    h.wait_connected()
    for i, f in enumerate(synthetic_frames[:3]):
        h.publish(f.image, f.K)
        assert h.wait_for(lambda n=i + 1: h.count("hands") >= n)
    # a subscriber that arrives later still gets both meshes (transient local), exactly once each
    got = {"right": [], "left": []}
    latched = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    for side in got:
        h.io.create_subscription(Mesh, f"/{h.ns}/hand_recon_node/faces/{side}", got[side].append, latched)
    assert h.wait_for(lambda: got["right"] and got["left"])
    time.sleep(0.2)
    faces = synthetic_frames[0].truth.faces
    assert len(got["right"]) == 1 and len(got["left"]) == 1
    assert len(got["right"][0].triangles) == len(faces[RIGHT])
    np.testing.assert_array_equal(np.array([t.vertex_indices for t in got["left"][0].triangles]), faces[LEFT])


def test_overlay_is_rendered_only_while_subscribed(harness_factory, synthetic_frames, ground_truth):
    from sensor_msgs.msg import Image

    h = harness_factory(ground_truth, subscribe=("hands",), prefix="overlay")
    h.wait_connected()
    frames = iter(synthetic_frames)
    for i in range(3):
        h.publish(next(frames).image, synthetic_frames[0].K)
        assert h.wait_for(lambda n=i + 1: h.count("hands") >= n)
    assert h.node.overlay_slot.received == 0 and h.node.latency.count("overlay") == 0

    h.subscribe("overlay", Image, f"/{h.ns}/hand_recon_node/overlay")
    assert h.wait_for(lambda: h.node.subscription_count("overlay") >= 1)
    header = None
    for i in range(3):
        header = h.publish(next(frames).image, synthetic_frames[0].K)
        assert h.wait_for(lambda n=i + 4: h.count("hands") >= n)
    assert h.wait_for(lambda: h.count("overlay") >= 1)
    overlay = h.received["overlay"][-1]
    assert overlay.encoding == "rgb8" and (overlay.width, overlay.height) == synthetic_frames[0].image.shape[1::-1]
    assert h.wait_for(lambda: h.received["overlay"][-1].header.stamp == header.stamp)

    h.unsubscribe("overlay")
    assert h.wait_for(lambda: h.node.subscription_count("overlay") == 0)
    rendered = h.node.overlay_slot.received
    n_hands = h.count("hands")
    for i in range(3):
        h.publish(next(frames).image, synthetic_frames[0].K)
        assert h.wait_for(lambda n=n_hands + i + 1: h.count("hands") >= n)
    assert h.node.overlay_slot.received == rendered


def test_lifecycle_transitions(ros_context, synthetic_frames, ground_truth):
    from lifecycle_msgs.msg import State
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from hand_recon_ros.recon_node import HandReconNode

    built = []
    node = HandReconNode("lifecycle_node", context=ros_context, namespace="lifecycle_test",
                         parameter_overrides=[Parameter("autostart", value=False)],
                         pipeline_factory=lambda cfg: built.append(cfg) or ground_truth)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        image_topic = "/lifecycle_test/image"
        assert node.pipeline is None and not built
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.pipeline is ground_truth and len(built) == 1
        assert node.count_subscribers(image_topic) == 0  # inactive: no input subscription yet
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.count_subscribers(image_topic) == 1 and node._worker.is_alive()
        assert node.diagnostics()[2]["state"] == "active"
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.count_subscribers(image_topic) == 0 and node._worker is None
        assert node.pipeline is ground_truth  # kept: model.free_gpu_on_deactivate is false
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.pipeline is None and node.subscription_count("hands") == 0
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and len(built) == 2
        assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_FINALIZED
        assert node.pipeline is None
    finally:
        executor.shutdown()
        node.close()
        node.destroy_node()


def test_a_failing_model_fails_configure_without_crashing(ros_context):
    from rclpy.lifecycle import TransitionCallbackReturn

    from hand_recon_ros.recon_node import HandReconNode

    def broken(cfg):
        raise FileNotFoundError("no checkpoint here")

    node = HandReconNode("broken_node", context=ros_context, namespace="broken_test", pipeline_factory=broken)
    try:  # autostart tried and failed: the node stays unconfigured and can be configured again
        assert node.pipeline is None
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    finally:
        node.close()
        node.destroy_node()


def test_bad_inputs_are_logged_and_skipped_while_the_node_keeps_running(harness_factory, synthetic_frames,
                                                                        ground_truth):
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image

    h = harness_factory(ground_truth, subscribe=("hands",), prefix="bad")
    h.wait_connected()
    good = synthetic_frames[0]
    rgb = good.image

    def raw(**fields) -> Image:
        msg = Image(header=h.header(), height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                    step=rgb.shape[1] * 3, data=rgb.tobytes())
        for k, v in fields.items():
            setattr(msg, k, v)
        return msg

    bad_images = {
        "empty": raw(height=0, width=0, step=0, data=b""),
        "encoding": raw(encoding="32FC1"),
        "step": raw(step=10),
        "data": raw(data=rgb.tobytes()[:1000]),
        "image": Image(header=h.header(), height=8000, width=8000, encoding="mono8", step=8000,
                       data=bytes(8000 * 8000)),  # a real 64 MB frame, above max_image_side
    }
    for i, msg in enumerate(bad_images.values()):  # one at a time: a newer image would replace a pending one
        h.image_pub.publish(msg)
        assert h.wait_for(lambda n=i + 1: h.node.counters["rejected"] >= n, 10.0), h.node.rejections
    assert set(h.node.rejections) == set(bad_images), h.node.rejections
    assert h.count("hands") == 0
    warnings = " ".join(m for _, m in h.node.recent_warnings)
    assert "unsupported encoding '32FC1'" in warnings and "exceeds the maximum side" in warnings

    # camera infos with NaN or zero intrinsics are refused; the image then uses the default focal length
    for i, k in enumerate(([float("nan")] * 9, [0.0] * 9)):
        header = h.header()
        info = CameraInfo(header=header, width=rgb.shape[1], height=rgb.shape[0], k=k)
        h.info_pub.publish(info)
        time.sleep(0.05)
        h.publish(rgb, None, header=header)
        assert h.wait_for(lambda n=i + 1: h.count("hands") >= n)
    assert h.node.counters["camera_info_rejected"] == 2 and ground_truth.last_K is None
    assert any(key == "default_focal" for key, _ in h.node.recent_warnings)

    # a bad parameter value is refused with the reason, the old value stays
    result = h.node.set_parameters([Parameter("score_threshold", value=2.0)])[0]
    assert not result.successful and "score_threshold" in result.reason
    result = h.node.set_parameters([Parameter("model.device", value="gpu")])[0]
    assert not result.successful and "model.device" in result.reason
    result = h.node.set_parameters([Parameter("tracking.enabled", value=False)])[0]  # smoothing is on
    assert not result.successful and "needs tracking" in result.reason
    assert h.node.get_parameter("score_threshold").value == 0.5 and h.node.config.score_threshold == 0.5
    assert h.node.get_parameter("tracking.enabled").value is True

    # ... and the node still works
    n = h.count("hands")
    h.publish(rgb, good.K)
    assert h.wait_for(lambda: h.count("hands") == n + 1)
    assert len(h.received["hands"][-1].hands) == 2 and h.node.counters["errors"] == 0


def test_live_parameters_apply_to_the_next_frame(harness_factory, synthetic_frames, ground_truth):
    from rclpy.parameter import Parameter

    h = harness_factory(ground_truth, subscribe=("hands",), prefix="live")
    h.wait_connected()
    assert h.node.set_parameters([Parameter("max_hands", value=1)])[0].successful
    h.publish(synthetic_frames[0].image, synthetic_frames[0].K)
    assert h.wait_for(lambda: h.count("hands") == 1)
    assert len(h.received["hands"][0].hands) == 1
    assert h.node.set_parameters([Parameter("score_threshold", value=1.0), Parameter("max_hands", value=4)])[0] \
        .successful
    h.publish(synthetic_frames[1].image, synthetic_frames[1].K)  # truth scores are 1.0: kept
    assert h.wait_for(lambda: h.count("hands") == 2)
    assert len(h.received["hands"][1].hands) == 2


def test_camera_info_pairing_and_latest_fallback(harness_factory, synthetic_frames, ground_truth):
    h = harness_factory(ground_truth, subscribe=("hands",), prefix="sync")
    h.wait_connected()
    f = synthetic_frames[0]
    # matched pair: same stamp
    h.publish(f.image, f.K)
    assert h.wait_for(lambda: h.count("hands") == 1 and len(h.node.trace) == 1)
    np.testing.assert_allclose(ground_truth.last_K, f.K)
    assert h.node.trace[-1]["intrinsics"] == "camera_info"
    # constant intrinsics: after 10 identical camera infos an image no longer waits for its own
    for i in range(10):
        h.publish(f.image, f.K)
        assert h.wait_for(lambda n=i + 2: len(h.node.trace) == n)
    h.publish(f.image, None)
    assert h.wait_for(lambda: len(h.node.trace) == 12)
    t = h.node.trace[-1]
    assert t["intrinsics"] == "latest camera_info" and t["ready"] == t["received"]
    # new intrinsics in a camera info whose stamp matches no image (a second off): the latest one is used, and
    # the change resumes the pairing by stamp
    from hand_recon_ros.image_source_node import camera_info_msg

    K2 = f.K.copy()
    K2[0, 0] = K2[1, 1] = 123.0
    header = h.header()
    info_header = h.header(header.stamp.sec * 1_000_000_000 + header.stamp.nanosec + 1_000_000_000)
    h.info_pub.publish(camera_info_msg(K2, f.image.shape[1], f.image.shape[0], info_header))
    assert h.wait_for(lambda: h.node._latest_info is not None and h.node._latest_info.k[0] == 123.0)
    h.publish(f.image, None, header=header)
    assert h.wait_for(lambda: len(h.node.trace) == 13)
    t = h.node.trace[-1]
    assert t["intrinsics"] == "latest camera_info" and ground_truth.last_K[0, 0] == 123.0
    assert t["ready"] - t["received"] > 0.02  # waited sync.wait (0.03 s) for a camera info of its own


def test_a_burst_at_100_hz_leaves_no_backlog_and_bounded_memory(harness_factory, synthetic_frames):
    from hand_recon_ros.fake_pipeline import GroundTruthPipeline
    from hand_recon_ros.sync import stamp_ns

    slow = GroundTruthPipeline(delay=0.03)  # a 30 ms model behind a 100 Hz camera
    for f in synthetic_frames:
        slow.register(f.image, f.truth)
    h = harness_factory(slow, subscribe=("hands",), prefix="burst")  # default input QoS: sensor data, depth 5
    h.wait_connected()
    K = synthetic_frames[0].K
    rss_before = _rss_mb()
    max_pending = 0
    t_next = time.perf_counter()
    for i in range(200):
        h.publish(synthetic_frames[i % len(synthetic_frames)].image, K)
        max_pending = max(max_pending, h.node.slot.pending())
        t_next += 0.01
        time.sleep(max(0.0, t_next - time.perf_counter()))
    burst_end = time.monotonic()
    node = h.node

    def idle() -> bool:
        return (node.slot.pending() == 0 and node.slot.received == node.counters["received"]
                and node.counters["processed"] + node.slot.dropped == node.slot.received)

    assert h.wait_for(idle, 5.0), (node.slot.received, node.slot.dropped, node.counters)
    # idle within a few model periods after the burst: nothing was queued behind the worker
    assert time.monotonic() - burst_end < 2.0
    quiet = [node.slot.received, time.monotonic()]

    def settled() -> bool:  # no image still arriving from DDS for 0.3 s, and idle
        if node.slot.received != quiet[0]:
            quiet[:] = [node.slot.received, time.monotonic()]
        return idle() and time.monotonic() - quiet[1] > 0.3

    assert h.wait_for(settled, 5.0)
    assert max_pending <= 1
    assert node.slot.received >= 20  # DDS (best effort, depth 5) drops some itself when the machine is busy
    assert node.slot.dropped > 0 and node.counters["processed"] < node.slot.received  # the model skipped frames
    # the newest image received was processed last (not one from a backlog)
    assert h.wait_for(lambda: len(node.trace) == node.counters["processed"])
    assert node.trace[-1]["stamp_ns"] == node.last_received_stamp
    assert h.wait_for(lambda: h.count("hands") == node.counters["processed"])
    assert stamp_ns(h.received["hands"][-1]) == node.last_received_stamp
    assert _rss_mb() - rss_before < 150.0
    _, _, values = node.diagnostics()
    assert int(values["frames_dropped"]) == node.slot.dropped


def test_diagnostics_are_published(harness_factory, synthetic_frames, ground_truth):
    from diagnostic_msgs.msg import DiagnosticStatus

    h = harness_factory(ground_truth, params={"diagnostics_period": 0.2}, subscribe=("hands", "diagnostics"),
                        prefix="diag")
    h.wait_connected()
    for i, f in enumerate(synthetic_frames[:3]):
        h.publish(f.image, f.K)
        assert h.wait_for(lambda n=i + 1: h.count("hands") == n)

    def ours():
        with h.lock:
            return [s for m in h.received["diagnostics"] for s in m.status
                    if s.name.startswith(f"{h.node.get_name()}") and s.hardware_id.endswith(f"/{h.ns}/hand_recon_node")]

    assert h.wait_for(lambda: any(int(next((kv.value for kv in s.values if kv.key == "frames_processed"), 0)) == 3
                                  for s in ours()), 5.0)
    values = {kv.key: kv.value for kv in ours()[-1].values}
    for key in ("input_rate_hz", "frames_dropped", "backend", "device", "latency_end_to_end_p50_ms",
                "latency_end_to_end_p95_ms", "latency_model_p50_ms", "latency_ros_layer_p95_ms"):
        assert key in values, key
    # the stand-in model is never mistaken for a reconstruction: a WARN naming it
    status = ours()[-1]
    assert status.level == DiagnosticStatus.WARN and "ground-truth stand-in" in status.message
    assert "SYNTHETIC GROUND TRUTH" in values["model"]
    # a randomly initialised model says so in the diagnostics too
    h.node.pipeline.random_weights = True
    try:
        level, message, _ = h.node.diagnostics()
        assert level == DiagnosticStatus.WARN and "RANDOM WEIGHTS" in message
    finally:
        h.node.pipeline.random_weights = False


def test_bad_parameters_at_start_keep_the_node_unconfigured_until_fixed(ros_context, ground_truth):
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from hand_recon_ros.recon_node import HandReconNode

    node = HandReconNode("start_params", context=ros_context, namespace="start_params_test",
                         pipeline_factory=lambda cfg: ground_truth,
                         parameter_overrides=[Parameter("score_threshold", value=3.0),
                                              Parameter("tracking.enabled", value=False)])
    try:
        assert node.pipeline is None  # autostart refused: out-of-range override (default kept) ...
        assert node.get_parameter("score_threshold").value == 0.5
        assert "score_threshold" in " ".join(node._param_errors.values())
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        # a change is refused only for what it breaks, so fixing one value at a time works
        assert node.set_parameters([Parameter("score_threshold", value=0.3)])[0].successful
        # ... smoothing without tracking is an inconsistent combination, refused at configure
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.set_parameters([Parameter("smoothing.enabled", value=False)])[0].successful
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.config.score_threshold == 0.3 and node.pipeline is ground_truth
    finally:
        node.close()
        node.destroy_node()
