"""Stand-ins for ``hand_recon_core.inference.Pipeline`` with its call signature, for tests, benchmarks and demos.

Neither estimates anything; both return :class:`~hand_recon_core.inference.frame.HandFrame` s known beforehand:

* :class:`PrecomputedPipeline` returns the same frame for every image at once (``hand-recon bench ros``: the
  model time is then ~0 and what remains is the ROS layer's own cost);
* :class:`GroundTruthPipeline` returns the synthetic ground truth registered for an image (looked up by the
  image's content), so a synthetic stream goes through the node with known hands (tests; ``hand-recon ros-demo
  --model oracle``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict

import numpy as np

__all__ = ["GroundTruthPipeline", "PrecomputedPipeline", "copy_frame", "image_digest"]


def image_digest(image: np.ndarray) -> bytes:
    """A 16-byte digest of an (H, W, 3) uint8 image's pixels and shape (any memory layout)."""
    a = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(a.shape).encode())
    h.update(a.data)
    return h.digest()


def copy_frame(frame, image_size: tuple[int, int] | None = None, K: np.ndarray | None = None):
    """A new HandFrame with new HandResult objects (arrays shared), optionally another image size / K."""
    hands = [dataclasses.replace(h) for h in frame.hands]
    return dataclasses.replace(frame, hands=hands,
                               image_size=frame.image_size if image_size is None else image_size,
                               K=frame.K if K is None else np.asarray(K, np.float64),
                               timings_ms=dict(frame.timings_ms))


class PrecomputedPipeline:
    """Returns a copy of one HandFrame for every image.

    Args:
        frame: the HandFrame returned.
        delay: seconds to sleep per call (a model of that latency; 0 = instant).
    """

    device = "cpu"
    backend = "precomputed"

    def __init__(self, frame, delay: float = 0.0) -> None:
        self.frame = frame
        self.delay = float(delay)
        self.calls = 0

    def __call__(self, image_rgb: np.ndarray, K: np.ndarray | None = None):
        """The frame for any (H, W, 3) uint8 image: a copy with this image's size and ``K`` (when given)."""
        t0 = time.perf_counter()
        if self.delay > 0:
            time.sleep(self.delay)
        self.calls += 1
        h, w = image_rgb.shape[:2]
        out = copy_frame(self.frame, (w, h), K)
        out.timings_ms = {"total": (time.perf_counter() - t0) * 1e3}
        return out


class GroundTruthPipeline:
    """Returns the ground truth registered for an image (an empty frame for unknown images).

    Args:
        capacity: registered images remembered (oldest forgotten first).
        delay: seconds to sleep per call (0 = instant).
    """

    device = "cpu"
    backend = "ground-truth"
    #: What the node logs as the model: never mistaken for a reconstruction.
    LABEL = "SYNTHETIC GROUND TRUTH replayed (oracle stand-in, not a reconstruction)"

    def __init__(self, capacity: int = 512, delay: float = 0.0) -> None:
        self._frames: OrderedDict[bytes, object] = OrderedDict()
        self._capacity = int(capacity)
        self._lock = threading.Lock()
        self.delay = float(delay)
        self.calls = 0
        self.misses = 0
        self.last_K: np.ndarray | None = None

    def describe(self) -> dict:
        """Summary for the node's log and diagnostics."""
        return {"detector": self.LABEL, "refiner": "none", "backend": self.backend, "random_weights": False,
                "oracle": True}

    def register(self, image: np.ndarray, truth) -> None:
        """Remember ``truth`` (a HandFrame) as the answer for ``image`` ((H, W, 3) uint8 RGB)."""
        key = image_digest(image)
        with self._lock:
            self._frames[key] = truth
            self._frames.move_to_end(key)
            while len(self._frames) > self._capacity:
                self._frames.popitem(last=False)

    def __call__(self, image_rgb: np.ndarray, K: np.ndarray | None = None):
        """The registered truth of ``image_rgb`` (H, W, 3) uint8 (``K`` recorded in :attr:`last_K`)."""
        from hand_recon_core.inference.frame import HandFrame

        t0 = time.perf_counter()
        if self.delay > 0:
            time.sleep(self.delay)
        self.calls += 1
        self.last_K = None if K is None else np.array(K, np.float64)
        key = image_digest(image_rgb)
        with self._lock:
            truth = self._frames.get(key)
        h, w = image_rgb.shape[:2]
        if truth is None:
            self.misses += 1
            out = HandFrame(hands=[], image_size=(w, h), K=np.eye(3) if K is None else np.asarray(K, np.float64),
                            hand_model_id="unknown")
        else:
            out = copy_frame(truth, (w, h), K)
        out.timings_ms = {"total": (time.perf_counter() - t0) * 1e3}
        return out
