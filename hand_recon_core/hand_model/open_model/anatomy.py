"""Anatomical description of the open hand model: skeleton, segment sizes, anatomical frames, joint limits.

Everything the generator builds comes from the numbers in this module. Values are for an average adult male
right hand in its flat rest pose (fingers straight, slightly spread, thumb extended alongside the index).

Sources (approximate, for plausibility, not a statistical model):

* Hand length and finger lengths: HAND_FACTS.md anthropometrics (Binvignat et al., Int J Morphol, n = 1196):
  male hand length ~185 mm, finger lengths thumb 72.5, index 104.2, middle 115.0, ring 109.1, little 88.5 mm.
  We use them as *ratios* (finger / middle) on the MCP-to-tip length, so that wrist-to-middle-MCP
  (~95 mm, HAND_FACTS) plus middle MCP-to-tip gives a hand length of ~187 mm.
* Phalanx proportions within a finger: proximal : middle : distal (incl. the pulp) ~ 0.49 : 0.30 : 0.21, the
  usual ratios reported for adult hands (e.g. Buryanov & Kotiuk, "Proportions of hand segments", Int J Morphol
  2010); thumb proximal : distal ~ 0.55 : 0.45; thumb metacarpal ~46 mm.
* Breadths/thicknesses: typical adult values from hand anthropometry surveys (e.g. Greiner 1991, US Army):
  hand breadth at the metacarpals ~85 mm, palm thickness ~27-30 mm, wrist breadth ~56-60 mm, finger breadth
  ~21 mm at the proximal phalanx falling to ~16 mm at the distal one, finger depth ~0.9 x breadth.
* Joint limits: typical active ranges of motion (e.g. Hume et al., J Hand Surg 1990; AAOS normative values):
  finger MCP -20..90 deg flexion, +-20 deg abduction; PIP 0..105; DIP -10..80; thumb MCP -10..55, IP -15..80.

Model frame (same axes as official MANO): metres, wrist joint at the origin, fingers along -x, palm facing -y
(dorsum +y), right thumb towards +z. Internally this module works in "anatomical" millimetre coordinates
``(u, w, h)``: u distal (towards the fingertips), w radial (towards the thumb), h dorsal; the model frame is
``(x, y, z) = (-u, h, w) / 1000``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_recon_core.hand_model.constants import FINGER_JOINTS, FINGER_NAMES

MM = 1e-3

#: (u, w, h) mm of the four finger MCP joints. Wrist to middle MCP 95 mm (HAND_FACTS); the MCP line recedes
#: towards the little finger and follows the transverse metacarpal arch (ring/little slightly palmar).
MCP_UWH: dict[str, tuple[float, float, float]] = {
    "index": (92.0, 27.0, 0.0),
    "middle": (95.0, 7.5, 0.5),
    "ring": (90.0, -12.0, -1.0),
    "pinky": (81.0, -29.5, -3.0),
}

#: Middle finger MCP-to-tip length (mm): hand length 187 mm minus wrist-to-MCP 95 mm.
MIDDLE_FINGER_LENGTH = 92.0
#: Finger length ratios to the middle finger (HAND_FACTS, Binvignat et al., male means).
FINGER_RATIO: dict[str, float] = {
    "thumb": 72.5 / 115.0,
    "index": 104.2 / 115.0,
    "middle": 1.0,
    "ring": 109.1 / 115.0,
    "pinky": 88.5 / 115.0,
}
#: Proximal : middle : distal (to the tip of the pulp) proportions of a finger's MCP-to-tip length.
PHALANX_PROPORTIONS = (0.49, 0.30, 0.21)
#: Thumb proximal : distal (to the tip) proportions of its MCP-to-tip length.
THUMB_PHALANX_PROPORTIONS = (0.55, 0.45)
#: Thumb metacarpal length, CMC to MCP joint centres (mm).
THUMB_METACARPAL = 46.0

#: Rest fan angle of each finger in the palm plane (deg, positive towards the thumb): a relaxed flat hand.
FAN_DEG: dict[str, float] = {"index": 7.0, "middle": 0.5, "ring": -6.5, "pinky": -14.0}

#: Thumb CMC joint (u, w, h) mm: distal-radial-palmar of the wrist joint centre.
THUMB_CMC_UWH = (22.0, 21.0, -13.0)
#: Thumb segment directions at rest as (angle from u towards w in the palm plane, palmar tilt) in degrees, for
#: the metacarpal, the proximal and the distal phalanx (the extended thumb of a flat hand).
THUMB_DIRS_DEG = ((38.0, 16.0), (27.0, 9.0), (20.0, 4.0))
#: Pronation of the thumb about its own axis (deg): its pulp faces the fingers rather than the palm.
THUMB_PRONATION_DEG = 62.0

#: Half-breadth a and half-depth b (mm) at the base joint, the two following joints and the tip of each digit.
#: Thumb stations: CMC, MCP, IP, tip. Finger stations: MCP, PIP, DIP, tip.
DIGIT_RADII: dict[str, tuple[tuple[float, float], ...]] = {
    "thumb": ((12.5, 11.0), (11.3, 9.8), (10.6, 8.8), (9.3, 7.6)),
    "index": ((9.8, 9.2), (9.3, 8.6), (8.5, 7.6), (7.7, 6.6)),
    "middle": ((9.9, 9.3), (9.5, 8.8), (8.7, 7.7), (7.9, 6.8)),
    "ring": ((9.3, 8.8), (8.9, 8.3), (8.2, 7.3), (7.5, 6.5)),
    "pinky": ((8.2, 7.9), (7.8, 7.4), (7.2, 6.6), (6.7, 5.9)),
}

#: Palm cross-sections along u: (u mm, breadth mm, thickness mm, centre w mm, centre h mm).
PALM_SECTIONS = (
    (-14.0, 56.0, 34.0, -1.0, 0.5),
    (5.0, 58.0, 33.0, -1.0, 0.0),
    (30.0, 70.0, 29.0, -1.5, -0.5),
    (60.0, 79.0, 25.5, -1.0, -1.5),
    (100.0, 81.0, 21.0, -1.0, -2.5),
)
#: Palm distal edge beyond the MCP joint centres (mm): dorsal (knuckles) and palmar (digital creases/web).
PALM_DISTAL_OVERHANG = (2.0, 13.0)
#: Thenar eminence: centre offset from the thumb metacarpal midpoint (du, dw, dh mm) and semi-axes (mm).
THENAR = ((-4.0, -6.0, -4.0), (25.0, 14.0, 11.0))
#: Hypothenar eminence: centre (u, w, h) mm and semi-axes (mm).
HYPOTHENAR = ((42.0, -29.0, -5.5), (33.0, 10.0, 10.0))

#: Active range of motion per joint (deg): rows (flexion, abduction, twist), columns (min, max), in the
#: joint's anatomical frame (see :func:`anatomical_frames`). Positive flexion curls towards the palm; positive
#: abduction rotates about the palmar axis (towards the little finger for a right hand). The thumb's frame is
#: pronated (its "palmar" axis points from the pulp towards the fingers), so for the thumb CMC positive flexion
#: swings it across the palm and positive abduction lifts it dorsally; opposition combines flexion and twist.
LIMITS_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "finger_mcp": ((-20.0, 90.0), (-20.0, 20.0), (-10.0, 10.0)),
    "finger_pip": ((-5.0, 105.0), (-5.0, 5.0), (-6.0, 6.0)),
    "finger_dip": ((-10.0, 80.0), (-5.0, 5.0), (-5.0, 5.0)),
    "thumb_cmc": ((-25.0, 50.0), (-45.0, 50.0), (-40.0, 40.0)),
    "thumb_mcp": ((-10.0, 55.0), (-10.0, 10.0), (-12.0, 12.0)),
    "thumb_ip": ((-15.0, 80.0), (-5.0, 5.0), (-6.0, 6.0)),
}
#: Extra abduction range of the border fingers (index, pinky) at the MCP (deg).
BORDER_FINGER_ABDUCTION = 8.0


def uwh_to_model(p: np.ndarray) -> np.ndarray:
    """Anatomical (u, w, h) millimetres -> model-frame (x, y, z) metres: ``(-u, h, w) / 1000``.

    Args:
        p: (..., 3) points or directions in (u, w, h) mm.

    Returns:
        (..., 3) in model frame, metres (directions are scaled too; normalise if needed).
    """
    p = np.asarray(p, dtype=np.float64)
    return np.stack([-p[..., 0], p[..., 2], p[..., 1]], axis=-1) * MM


def model_to_uwh(p: np.ndarray) -> np.ndarray:
    """Inverse of :func:`uwh_to_model`: model-frame metres -> (u, w, h) millimetres."""
    p = np.asarray(p, dtype=np.float64) / MM
    return np.stack([-p[..., 0], p[..., 2], p[..., 1]], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _dir_uwh(angle_deg: float, tilt_deg: float) -> np.ndarray:
    a, t = np.radians(angle_deg), np.radians(tilt_deg)
    return np.array([np.cos(a) * np.cos(t), np.sin(a) * np.cos(t), -np.sin(t)])


@dataclass(frozen=True)
class Skeleton:
    """Rest skeleton of the open right hand (anatomical mm coordinates unless stated).

    Attributes:
        joints: (16, 3) kinematic joints (u, w, h) mm, MANO native order.
        tips: (5, 3) fingertip surface points (thumb, index, middle, ring, pinky), (u, w, h) mm.
        dirs: (16, 3) unit bone direction of each joint's segment (joint -> child or tip); wrist: +u.
        dorsal: (16, 3) unit dorsal direction of each segment (perpendicular to ``dirs``).
        radii: (16, 2, 2) (a, b) half-breadth/half-depth at the segment's start and end (palm row unused).
    """

    joints: np.ndarray
    tips: np.ndarray
    dirs: np.ndarray
    dorsal: np.ndarray
    radii: np.ndarray

    def segment_end(self, j: int) -> np.ndarray:
        """End point (u, w, h) of the segment starting at joint ``j`` (child joint or fingertip)."""
        for f, chain in FINGER_JOINTS.items():
            if j == chain[2]:
                return self.tips[FINGER_NAMES.index(f)]
        return self.joints[j + 1]


def build_skeleton() -> Skeleton:
    """Compute the rest skeleton from the tables of this module.

    Returns:
        The :class:`Skeleton` (anatomical mm coordinates).
    """
    joints = np.zeros((16, 3))
    tips = np.zeros((5, 3))
    dirs = np.zeros((16, 3))
    dorsal = np.zeros((16, 3))
    radii = np.zeros((16, 2, 2))
    dirs[0] = (1.0, 0.0, 0.0)
    dorsal[0] = (0.0, 0.0, 1.0)
    for f in ("index", "middle", "ring", "pinky"):
        length = MIDDLE_FINGER_LENGTH * FINGER_RATIO[f]
        d = _dir_uwh(FAN_DEG[f], 0.0)
        chain = FINGER_JOINTS[f]
        p = np.array(MCP_UWH[f])
        r = DIGIT_RADII[f]
        for k, j in enumerate(chain):
            joints[j] = p
            dirs[j] = d
            dorsal[j] = (0.0, 0.0, 1.0)
            radii[j] = (r[k], r[k + 1])
            p = p + PHALANX_PROPORTIONS[k] * length * d
        tips[FINGER_NAMES.index(f)] = p
    # Thumb: CMC, then metacarpal, proximal and distal phalanges with their own directions.
    thumb_len = MIDDLE_FINGER_LENGTH * FINGER_RATIO["thumb"]
    seg_len = (THUMB_METACARPAL, THUMB_PHALANX_PROPORTIONS[0] * thumb_len, THUMB_PHALANX_PROPORTIONS[1] * thumb_len)
    p = np.array(THUMB_CMC_UWH)
    r = DIGIT_RADII["thumb"]
    for k, j in enumerate(FINGER_JOINTS["thumb"]):
        d = _dir_uwh(*THUMB_DIRS_DEG[k])
        joints[j] = p
        dirs[j] = d
        dorsal[j] = thumb_dorsal(d)
        radii[j] = (r[k], r[k + 1])
        p = p + seg_len[k] * d
    tips[0] = p
    return Skeleton(joints=joints, tips=tips, dirs=dirs, dorsal=dorsal, radii=radii)


def thumb_dorsal(d: np.ndarray) -> np.ndarray:
    """Dorsal (nail) direction of a thumb segment with axis ``d`` (u, w, h), given the thumb's pronation.

    The finger dorsal direction (+h) is rotated about the segment axis by ``THUMB_PRONATION_DEG`` towards the
    radial side (+w), so the thumb nail faces radially-dorsally and its pulp faces the fingers.
    """
    up = np.array([0.0, 0.0, 1.0])
    up = _unit(up - up.dot(d) * d)
    side = np.cross(up, d)  # (u, w, h) is right-handed: h x u = +w, the radial side
    phi = np.radians(THUMB_PRONATION_DEG)
    return _unit(np.cos(phi) * up + np.sin(phi) * side)


def anatomical_frames(skel: Skeleton) -> np.ndarray:
    """Anatomical rest frames of the 16 joints in the model frame (right hand).

    Column 0 is the bone direction, column 1 the palmar direction of the segment (flexion turns the bone
    towards it), column 2 = column 0 x column 1 is the flexion axis. For the fingers this is (-x, -y, +z) up to
    the fan angle; for the thumb the palmar direction follows its pronation.

    Args:
        skel: the rest skeleton.

    Returns:
        (16, 3, 3) float64 rotation matrices (columns = axes in model coordinates).
    """
    frames = np.zeros((16, 3, 3))
    for j in range(16):
        x = _unit(uwh_to_model(skel.dirs[j]))
        y = -_unit(uwh_to_model(skel.dorsal[j]))
        y = _unit(y - y.dot(x) * x)
        z = np.cross(x, y)
        frames[j] = np.stack([x, y, z], axis=1)
    return frames


def joint_limits_rad() -> np.ndarray:
    """(16, 3, 2) joint limits in radians (rows flexion, abduction, twist; columns min, max; wrist zero)."""
    lim = np.zeros((16, 3, 2))
    for f, chain in FINGER_JOINTS.items():
        names = ("thumb_cmc", "thumb_mcp", "thumb_ip") if f == "thumb" else ("finger_mcp", "finger_pip",
                                                                            "finger_dip")
        for j, name in zip(chain, names, strict=True):
            lim[j] = np.radians(np.array(LIMITS_DEG[name]))
        if f in ("index", "pinky"):
            extra = np.radians(BORDER_FINGER_ABDUCTION)
            lim[chain[0], 1] += (-extra, extra)
    return lim

