"""sensor_msgs/Image -> RGB numpy conversion: every supported encoding and every malformed input."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _msg(pixels: np.ndarray, encoding: str, step: int | None = None, pad: int = 0):
    from sensor_msgs.msg import Image

    h, w = pixels.shape[:2]
    c = 1 if pixels.ndim == 2 else pixels.shape[2]
    step = w * c + pad if step is None else step
    rows = np.zeros((h, step), np.uint8)
    rows[:, : w * c] = pixels.reshape(h, w * c)
    return Image(height=h, width=w, encoding=encoding, step=step, data=rows.tobytes())


class FakeCvBridge:
    """What ``cv_bridge.CvBridge.imgmsg_to_cv2(msg, "passthrough")`` does on ROS 2 (public cv_bridge source): an
    array over ``msg.data`` with ``step / channels`` columns, cut to the width and made contiguous (a copy for
    padded rows), the channel axis dropped for one-channel encodings."""

    CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}

    def __init__(self) -> None:
        self.calls = 0

    def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
        assert desired_encoding == "passthrough"
        self.calls += 1
        c = self.CHANNELS[msg.encoding]
        im = np.ndarray(shape=(msg.height, msg.step // c, c), dtype=np.uint8, buffer=bytes(msg.data))
        im = np.ascontiguousarray(im[: msg.height, : msg.width, :])
        return im[..., 0] if c == 1 else im


@pytest.fixture(params=["numpy", "cv_bridge"])
def backend(request, monkeypatch, ros_available):
    """Run the test through the numpy view and through a cv_bridge that behaves like the real one."""
    from hand_recon_ros import image_conversion

    fake = FakeCvBridge() if request.param == "cv_bridge" else None
    monkeypatch.setattr(image_conversion, "_CV_BRIDGE", fake)
    return fake


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 255, size=(5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 3])
def test_color_encodings_give_the_same_rgb(ros_available, rgb, pad, backend):
    from hand_recon_ros.image_conversion import image_msg_to_rgb

    alpha = np.full(rgb.shape[:2] + (1,), 77, np.uint8)
    cases = {
        "rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.concatenate([rgb, alpha], -1),
        "bgra8": np.concatenate([rgb[..., ::-1], alpha], -1),
    }
    for enc, pixels in cases.items():
        out = image_msg_to_rgb(_msg(np.ascontiguousarray(pixels), enc, pad=pad))
        assert out.shape == (5, 7, 3) and out.dtype == np.uint8, enc
        np.testing.assert_array_equal(out, rgb, err_msg=enc)
    # padded rows go through cv_bridge too, unless the padding is not whole pixels (4-channel rows + 3 bytes)
    assert backend is None or backend.calls == (len(cases) if pad == 0 else 2)


def test_mono8_is_broadcast_to_three_channels(ros_available, backend):
    from hand_recon_ros.image_conversion import image_msg_to_rgb

    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = image_msg_to_rgb(_msg(gray, "mono8"))
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[..., 1], gray)


def test_rgb8_is_a_view_not_a_copy(ros_available, rgb):
    from hand_recon_ros.image_conversion import image_msg_to_rgb

    msg = _msg(rgb, "rgb8")
    out = image_msg_to_rgb(msg)
    assert not out.flags.owndata and not out.flags.writeable


@pytest.mark.parametrize("mutate, match", [
    (lambda m: setattr(m, "encoding", "16UC1"), "unsupported encoding"),
    (lambda m: setattr(m, "height", 0), "empty image"),
    (lambda m: setattr(m, "step", 5), "step 5 is smaller"),
    (lambda m: setattr(m, "data", bytes(m.data[:-1])), "expected height x step"),
    (lambda m: (setattr(m, "height", 8000), setattr(m, "width", 8000)), "exceeds the maximum side"),
])
def test_malformed_images_are_refused_with_the_reason(ros_available, rgb, mutate, match, backend):
    from hand_recon_ros.image_conversion import ImageConversionError, image_msg_to_rgb

    msg = _msg(rgb, "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=match):
        image_msg_to_rgb(msg)
    assert backend is None or backend.calls == 0  # refused before cv_bridge sees it


def test_rgb_to_image_msg_roundtrip(ros_available, rgb):
    from std_msgs.msg import Header

    from hand_recon_ros.image_conversion import image_msg_to_rgb, rgb_to_image_msg

    for enc in ("rgb8", "bgr8"):
        np.testing.assert_array_equal(image_msg_to_rgb(rgb_to_image_msg(rgb, Header(), enc)), rgb)
