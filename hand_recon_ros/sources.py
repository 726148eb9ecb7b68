"""Frame sources of ``image_source_node`` (no rclpy): synthetic moving hands, video file, image folder, camera.

Every source returns :class:`SourceFrame` s (RGB image, intrinsics when known, synthetic ground truth when
known) from :meth:`read`, or None when it has no more frames.

:class:`SyntheticHandsSource` (the default) animates one interacting two-hand scene of the synthetic engine
(:mod:`hand_recon_core.data.synthetic`): the pair turns and drifts rigidly, each hand flexes its fingers, all
smooth periodic functions of time, so frame ``i`` is a pure function of ``(seed, scene, size, rate, i)``.
Its ground truth (a :class:`hand_recon_core.inference.frame.HandFrame`) lets tests and the demo check every
output of the node against known hands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CameraSource",
    "ImageFolderSource",
    "SourceFrame",
    "SyntheticHandsSource",
    "VideoFileSource",
    "intrinsics_from_focal",
    "open_source",
]

#: Image file suffixes read by :class:`ImageFolderSource`.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Video file suffixes recognised by :func:`open_source`.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass
class SourceFrame:
    """One frame of a source.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        K: (3, 3) float64 intrinsics in pixels (project convention: pixel centres at integers), or None when
            unknown.
        index: frame number from 0.
        truth: the ground-truth :class:`~hand_recon_core.inference.frame.HandFrame` (synthetic source only).
    """

    image: np.ndarray
    K: np.ndarray | None
    index: int
    truth: object | None = None


def intrinsics_from_focal(focal: float, width: int, height: int) -> np.ndarray:
    """(3, 3) float64 pinhole intrinsics with square pixels and the principal point at the image centre."""
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


class SyntheticHandsSource:
    """Two interacting hands moving smoothly over a static background, rendered by the synthetic engine.

    Args:
        width: image width, pixels.
        height: image height, pixels.
        rate: frames per second of the animation clock (frame ``i`` is time ``i / rate``).
        seed: synthetic stream seed.
        scene: index of the ``interacting`` scene animated.
        focal: focal length in pixels (default ``0.95 * width``).
        distance: depth of the pair's centre, metres.
        hand_model: hand model name (``"open"`` default).
        loop: start again after ``frames`` frames (None: never ends).
        frames: number of frames (None: unbounded).
    """

    #: Motion: yaw / pitch amplitudes (radians) and periods (seconds); drift amplitudes (metres) and periods.
    YAW = (0.45, 7.0)
    PITCH = (0.25, 5.0)
    DRIFT = ((0.06, 6.0), (0.035, 4.0), (0.05, 9.0))
    FLEX_PERIODS = (3.0, 3.7)

    def __init__(self, width: int = 640, height: int = 480, rate: float = 15.0, seed: int = 0, scene: int = 0,
                 focal: float | None = None, distance: float = 0.5, hand_model: str = "open",
                 frames: int | None = None) -> None:
        from hand_recon_core.data.synthetic.appearance import sample_background
        from hand_recon_core.data.synthetic.engine import generate_scene, sample_rng
        from hand_recon_core.data.synthetic.hands import rest_wrist

        if width < 16 or height < 16:
            raise ValueError(f"image size {width}x{height} is too small")
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.width, self.height, self.rate = int(width), int(height), float(rate)
        self.frames = frames
        self.K = intrinsics_from_focal(0.95 * width if focal is None else float(focal), width, height)
        base, models, _ = generate_scene("interacting", int(scene), int(seed), hand_model=hand_model)
        self.models = models
        self.sides = [h.side for h in base.hands]
        self.betas = np.stack([h.betas for h in base.hands]).astype(np.float32)
        self.poses = np.stack([h.hand_pose for h in base.hands]).astype(np.float64)
        self.albedo = [h.albedo for h in base.hands]
        self.sh = base.sh
        self.j0 = np.stack([rest_wrist(models, s, b) for s, b in zip(self.sides, self.betas)])
        wrists = np.stack([h.joints[0] for h in base.hands]).astype(np.float64)
        self.centre = np.concatenate([h.vertices for h in base.hands]).mean(axis=0).astype(np.float64)
        self.wrist_offsets = wrists - self.centre  # wrist positions relative to the pair's centre
        self.transl = np.stack([h.transl for h in base.hands]).astype(np.float64)
        self.distance = float(distance)
        rng = sample_rng(int(seed), "interacting", int(scene))
        self.background = sample_background((self.height, self.width), rng)
        self._index = 0

    def _pose_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(poses (N, 48), transl (N, 3)) of the hands at time ``t`` seconds."""
        from scipy.spatial.transform import Rotation

        two_pi = 2.0 * np.pi
        yaw = self.YAW[0] * np.sin(two_pi * t / self.YAW[1])
        pitch = self.PITCH[0] * np.sin(two_pi * t / self.PITCH[1] + 0.7)
        r_t = Rotation.from_euler("yx", [yaw, pitch]).as_matrix()
        drift = np.array([a * np.sin(two_pi * t / p + k) for k, (a, p) in enumerate(self.DRIFT)])
        centre = np.array([0.0, 0.0, self.distance]) + drift
        poses = self.poses.copy()
        transl = np.empty_like(self.transl)
        for k in range(len(self.sides)):
            r_k = Rotation.from_rotvec(self.poses[k, :3]).as_matrix()
            poses[k, :3] = Rotation.from_matrix(r_t @ r_k).as_rotvec()
            flex = 0.75 + 0.25 * np.sin(two_pi * t / self.FLEX_PERIODS[k % 2] + 1.3 * k)
            poses[k, 3:] = self.poses[k, 3:] * flex
            # rigid motion of the pair about its centre: the wrist (J0 + transl) moves with it
            wrist = self.j0[k] + self.transl[k] - self.centre
            transl[k] = r_t @ wrist + centre - self.j0[k]
        return poses, transl

    def render(self, index: int) -> SourceFrame:
        """Frame ``index`` (any order; deterministic)."""
        from hand_recon_core.data.synthetic.engine import finish_image
        from hand_recon_core.data.synthetic.hands import pose_hands
        from hand_recon_core.render.rasterizer import render_meshes

        poses, transl = self._pose_at(index / self.rate)
        hands = pose_hands(self.models, self.sides, poses, self.betas, transl)
        faces = [self.models.faces[s] for s in self.sides]
        res = render_meshes([h.vertices for h in hands], faces, self.albedo, self.K, (self.height, self.width),
                            sh_coeffs=self.sh, background=self.background, antialias=True)
        image = finish_image(res.image, 0.0, np.random.default_rng(0))
        return SourceFrame(image=image, K=self.K.copy(), index=index, truth=self._truth(hands))

    def _truth(self, hands) -> object:
        from hand_recon_core.data.sample import handedness_from_name
        from hand_recon_core.inference.frame import HandFrame, HandResult

        results = []
        for slot, h in enumerate(hands):
            kp = _project(h.joints, self.K)
            box = _project(h.vertices, self.K)
            results.append(HandResult(
                slot=slot, handedness=handedness_from_name(h.side), score=1.0,
                bbox=np.concatenate([box.min(0), box.max(0)]).astype(np.float32),
                keypoints_2d=kp.astype(np.float32), joints_3d=h.joints.astype(np.float32),
                vertices_3d=h.vertices.astype(np.float32), hand_pose=h.hand_pose.astype(np.float32),
                betas=h.betas.astype(np.float32), transl=h.transl.astype(np.float32),
                keypoints_2d_score=np.ones(kp.shape[0], np.float32)))
        faces = {handedness_from_name(s): self.models.faces[s].astype(np.int32) for s in ("right", "left")}
        return HandFrame(hands=results, image_size=(self.width, self.height), K=self.K.copy(),
                         hand_model_id=self.models.name, faces=faces, timings_ms={})

    def read(self) -> SourceFrame | None:
        """The next frame (None after ``frames`` frames)."""
        if self.frames is not None and self._index >= self.frames:
            return None
        frame = self.render(self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        """Nothing to release."""


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64) @ np.asarray(K, np.float64).T
    return p[:, :2] / p[:, 2:3]


class VideoFileSource:
    """Frames of a video file (OpenCV), optionally looped.

    Args:
        path: the video file.
        loop: start again at the end.
        focal: focal length in pixels when known (None: no intrinsics).
    """

    def __init__(self, path: str | os.PathLike, loop: bool = True, focal: float | None = None) -> None:
        import cv2

        self.path = str(path)
        self.loop = loop
        self.focal = focal
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise FileNotFoundError(f"cannot open the video {self.path}")
        self._index = 0

    def read(self) -> SourceFrame | None:
        """The next frame (None at the end without ``loop``)."""
        import cv2

        ok, bgr = self._cap.read()
        if not ok and self.loop and self._index > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok:
            return None
        return _frame_from_bgr(bgr, self.focal, self._next())

    def _next(self) -> int:
        self._index += 1
        return self._index - 1

    def close(self) -> None:
        """Release the capture."""
        self._cap.release()


class ImageFolderSource:
    """The images of a folder in name order, optionally looped.

    Args:
        path: the folder.
        loop: start again after the last image.
        focal: focal length in pixels when known (None: no intrinsics).
    """

    def __init__(self, path: str | os.PathLike, loop: bool = True, focal: float | None = None) -> None:
        self.files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"no image ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        self.loop = loop
        self.focal = focal
        self._index = 0

    def read(self) -> SourceFrame | None:
        """The next image (unreadable files skipped; None after the last without ``loop``)."""
        import cv2

        for _ in range(len(self.files)):  # skip unreadable files, at most one round
            if self._index >= len(self.files) and not self.loop:
                return None
            f = self.files[self._index % len(self.files)]
            index = self._index
            self._index += 1
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is not None:
                return _frame_from_bgr(bgr, self.focal, index)
        return None

    def close(self) -> None:
        """Nothing to release."""


class CameraSource:
    """A V4L2 / OpenCV camera.

    Args:
        device: camera index or device path (``/dev/video0``).
        width: requested width in pixels (0: the camera's default).
        height: requested height in pixels (0: the camera's default).
        focal: focal length in pixels when known (None: no intrinsics).
    """

    def __init__(self, device: int | str = 0, width: int = 0, height: int = 0, focal: float | None = None) -> None:
        import cv2

        self._cap = cv2.VideoCapture(device, cv2.CAP_V4L2) if isinstance(device, str) else cv2.VideoCapture(
            int(device))
        if not self._cap.isOpened():
            raise FileNotFoundError(f"cannot open the camera {device!r}")
        if width > 0:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height > 0:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.focal = focal
        self._index = 0

    def read(self) -> SourceFrame | None:
        """The next camera frame (None when the camera returns none)."""
        ok, bgr = self._cap.read()
        if not ok:
            return None
        self._index += 1
        return _frame_from_bgr(bgr, self.focal, self._index - 1)

    def close(self) -> None:
        """Release the capture."""
        self._cap.release()


def _frame_from_bgr(bgr: np.ndarray, focal: float | None, index: int) -> SourceFrame:
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    h, w = rgb.shape[:2]
    return SourceFrame(image=rgb, K=None if not focal else intrinsics_from_focal(focal, w, h), index=index)


def open_source(spec: str, width: int = 640, height: int = 480, rate: float = 15.0, seed: int = 0,
                focal: float | None = None, loop: bool = True):
    """Open a source from its specification.

    Args:
        spec: ``"synthetic"`` (or ``"synthetic:<scene index>"``), a video file, an image folder,
            ``"camera:<index>"`` or a device path ``/dev/videoN``.
        width: image width of the synthetic source / requested camera width, pixels.
        height: image height of the synthetic source / requested camera height, pixels.
        rate: frame rate of the synthetic animation clock, Hz.
        seed: seed of the synthetic source.
        focal: focal length in pixels (synthetic: default ``0.95 * width``; others: None = unknown).
        loop: loop video files and image folders.

    Returns:
        The source (``read()`` / ``close()``).

    Raises:
        FileNotFoundError: a file, folder or camera that cannot be opened.
        ValueError: an unrecognised specification.
    """
    s = spec.strip()
    if s == "synthetic" or s.startswith("synthetic:"):
        scene = int(s.split(":", 1)[1]) if ":" in s else 0
        return SyntheticHandsSource(width, height, rate, seed, scene, focal=focal)
    if s.startswith("camera:"):
        return CameraSource(int(s.split(":", 1)[1]), width, height, focal)
    if s.startswith("/dev/video"):
        return CameraSource(s, width, height, focal)
    p = Path(s).expanduser()
    if p.is_dir():
        return ImageFolderSource(p, loop, focal)
    if p.is_file():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return _SingleImageSource(p, focal)
        return VideoFileSource(p, loop, focal)
    raise ValueError(f"unknown source {spec!r}: use 'synthetic', a video file, an image folder, 'camera:<index>' "
                     "or /dev/videoN")


class _SingleImageSource:
    """One image file, repeated."""

    def __init__(self, path: Path, focal: float | None) -> None:
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read the image {path}")
        self._frame = _frame_from_bgr(bgr, focal, 0)
        self._index = 0

    def read(self) -> SourceFrame:
        self._index += 1
        return SourceFrame(self._frame.image, self._frame.K, self._index - 1)

    def close(self) -> None:
        """Nothing to release."""
