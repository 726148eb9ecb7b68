"""Image / CameraInfo pairing and the keep-latest frame slot (pure Python, stand-in messages)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from hand_recon_ros.sync import ApproxTimeSync, LatestFrameSlot, make_synchroniser, stamp_ns


def msg(t_ms: float, frame: str = "cam"):
    ns = int(round(t_ms * 1e6))
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=ns // 10**9, nanosec=ns % 10**9),
                                                  frame_id=frame), t=t_ms)


def test_stamp_ns():
    assert stamp_ns(msg(1500.25)) == 1_500_250_000


@pytest.mark.parametrize("image_first", [True, False])
def test_exact_stamps_pair_in_either_arrival_order(image_first):
    pairs = []
    sync = ApproxTimeSync(5, 0.005, lambda i, c: pairs.append((i.t, c.t)))
    for t in (0.0, 33.0, 66.0):
        a, b = msg(t), msg(t)
        if image_first:
            sync.add_image(a)
            sync.add_info(b)
        else:
            sync.add_info(b)
            sync.add_image(a)
    assert pairs == [(0.0, 0.0), (33.0, 33.0), (66.0, 66.0)]


def test_nearest_stamp_within_slop_wins_and_beyond_slop_never_pairs():
    pairs = []
    sync = ApproxTimeSync(5, 0.004, lambda i, c: pairs.append((i.t, c.t)))
    sync.add_info(msg(10.0))
    sync.add_info(msg(13.0))
    sync.add_image(msg(14.0))  # 13 is nearer than 10 (which is beyond the slop anyway)
    assert pairs == [(14.0, 13.0)]
    sync.add_image(msg(30.0))
    sync.add_info(msg(40.0))  # 10 ms apart > 4 ms slop
    assert pairs == [(14.0, 13.0)]


def test_queues_are_bounded_and_matched_messages_consumed():
    pairs = []
    sync = ApproxTimeSync(3, 0.001, lambda i, c: pairs.append((i.t, c.t)))
    for t in range(10):
        sync.add_image(msg(100.0 * t))
    assert len(sync._images) == 3  # the oldest were forgotten
    sync.add_info(msg(0.0))
    assert pairs == []  # image 0 was forgotten
    sync.add_info(msg(900.0))
    assert pairs == [(900.0, 900.0)] and len(sync._images) == 0  # older images dropped with the match
    sync.add_info(msg(900.0))
    assert len(pairs) == 1  # an image pairs once


def test_make_synchroniser_falls_back_to_the_builtin_one():
    pairs = []
    sync, name = make_synchroniser(4, 0.01, lambda i, c: pairs.append(1), prefer_message_filters=False)
    assert isinstance(sync, ApproxTimeSync) and "built-in" in name
    sync, name = make_synchroniser(4, 0.01, lambda i, c: pairs.append(1))
    sync.add_image(msg(5.0))
    sync.add_info(msg(5.0))
    assert pairs == [1]
    try:
        import message_filters  # noqa: F401
    except ImportError:
        assert "built-in" in name
    else:
        assert name.startswith("message_filters")


def test_slot_keeps_the_newest_frame_and_counts_drops():
    slot = LatestFrameSlot()
    assert slot.put_image(msg(1.0), 0.0) is False
    assert slot.put_image(msg(2.0), 0.0) is True
    assert slot.put_image(msg(3.0), 0.0) is True
    assert (slot.received, slot.dropped, slot.pending()) == (3, 2, 1)
    p = slot.take(timeout=0.1)
    assert p.image.t == 3.0 and p.seq == 3 and p.info is None and p.ready == p.received
    assert slot.take(timeout=0.01) is None and slot.taken == 1


def test_slot_waits_for_the_camera_info_until_its_deadline():
    slot = LatestFrameSlot()
    image = msg(5.0)
    slot.put_image(image, wait=0.2)
    assert slot.take(timeout=0.02) is None  # neither attached nor expired
    threading.Timer(0.03, lambda: slot.attach_info(msg(5.0), "K")).start()
    t0 = time.perf_counter()
    p = slot.take(timeout=1.0)
    assert p.info == "K" and time.perf_counter() - t0 < 0.15 and p.ready >= p.received
    # without an info it goes after the wait
    slot.put_image(msg(6.0), wait=0.05)
    t0 = time.perf_counter()
    p = slot.take(timeout=1.0)
    assert p.info is None and 0.04 < time.perf_counter() - t0 < 0.5 and p.ready == pytest.approx(p.deadline)


def test_attach_needs_the_pending_image():
    slot = LatestFrameSlot()
    slot.put_image(msg(1.0), wait=1.0)
    slot.put_image(msg(2.0), wait=1.0)
    assert slot.attach_info(msg(1.0), "old") is False  # that image was replaced
    assert slot.attach_info(msg(2.0, frame="other"), "x") is False  # same stamp, another camera
    assert slot.attach_info(msg(2.0), "ok") is True
    assert slot.attach_info(msg(2.0), "again") is False  # already has one
    assert slot.take(timeout=0.1).info == "ok"


def test_close_wakes_a_waiting_worker():
    slot = LatestFrameSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take()))
    t.start()
    time.sleep(0.02)
    slot.close()
    t.join(timeout=1.0)
    assert got == [None] and not t.is_alive()
    slot.reopen()
    slot.put_image(msg(1.0), 0.0)
    assert slot.take(timeout=0.1) is not None
