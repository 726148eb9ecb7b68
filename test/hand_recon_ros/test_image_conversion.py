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


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 255, size=(5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 3])
def test_color_encodings_give_the_same_rgb(ros_available, rgb, pad):
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


def test_mono8_is_broadcast_to_three_channels(ros_available):
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
def test_malformed_images_are_refused_with_the_reason(ros_available, rgb, mutate, match):
    from hand_recon_ros.image_conversion import ImageConversionError, image_msg_to_rgb

    msg = _msg(rgb, "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=match):
        image_msg_to_rgb(msg)


def test_rgb_to_image_msg_roundtrip(ros_available, rgb):
    from std_msgs.msg import Header

    from hand_recon_ros.image_conversion import image_msg_to_rgb, rgb_to_image_msg

    for enc in ("rgb8", "bgr8"):
        np.testing.assert_array_equal(image_msg_to_rgb(rgb_to_image_msg(rgb, Header(), enc)), rgb)
