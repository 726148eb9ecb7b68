"""Implicit surface of the open hand (approximate signed distance, anatomical mm coordinates).

The surface is a union of smooth primitives built from :mod:`.anatomy`:

* the palm: a generalised cylinder along u with superelliptic cross-sections (:data:`anatomy.PALM_SECTIONS`),
  cut distally along the MCP line (further on the palmar side than on the dorsal side, which forms the
  webs) and rounded at both ends; plus thenar and hypothenar eminences (ellipsoids) and knuckle bumps;
* each digit segment: a tapered elliptic capsule between its joints (the thumb metacarpal included).

Each finger is blended into the palm with a smooth minimum; different fingers are combined with a hard minimum
so they never fuse. Every primitive returns a first-order distance estimate ``f / |grad f|`` of a normalised
implicit function, which is exact on the surface and accurate near it (all the generator needs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_recon_core.hand_model.constants import FINGER_JOINTS, FINGER_NAMES
from hand_recon_core.hand_model.open_model import anatomy

#: Smooth-min radius (mm) between the palm body and its eminences/knuckles.
K_PALM = 4.0
#: Smooth-min radius (mm) between the segments of one digit.
K_DIGIT = 1.5
#: Smooth-min radius (mm) between a digit and the palm.
K_ATTACH = 4.0
#: Rounding radius (mm) of the palm's distal and proximal ends.
K_END = 6.0
#: Superellipse exponent of the palm cross-section (2 = ellipse; larger is boxier).
PALM_EXPONENT = 2.6


def smin(ds: list[np.ndarray], k: float) -> np.ndarray:
    """Smooth minimum (log-sum-exp) of distance arrays; ``k`` (mm) is the blend radius."""
    d = np.stack(ds, axis=0)
    m = d.min(axis=0)
    return m - k * np.log(np.exp(-(d - m) / k).sum(axis=0))


def smax(ds: list[np.ndarray], k: float) -> np.ndarray:
    """Smooth maximum (log-sum-exp)."""
    return -smin([-d for d in ds], k)


@dataclass(frozen=True)
class Capsule:
    """Tapered elliptic capsule from ``p0`` to ``p1`` (u, w, h mm).

    Attributes:
        p0, p1: end points of the axis.
        lateral: unit lateral axis (perpendicular to the capsule axis); the dorsal axis is axis x lateral.
        r0, r1: (a, b) half-breadth/half-depth at the two ends.
        cap0, cap1: axial semi-axis of the end caps (mm).
    """

    p0: np.ndarray
    p1: np.ndarray
    lateral: np.ndarray
    r0: tuple[float, float]
    r1: tuple[float, float]
    cap0: float
    cap1: float

    def distance(self, p: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm) of points ``p (N, 3)``."""
        axis = self.p1 - self.p0
        length = float(np.linalg.norm(axis))
        d = axis / length
        lat = self.lateral - self.lateral.dot(d) * d
        lat /= np.linalg.norm(lat)
        dor = np.cross(d, lat)
        q = p - self.p0
        t = q @ d
        tc = np.clip(t, 0.0, length)
        s = (tc / length)[:, None]
        ab = (1 - s) * np.array(self.r0) + s * np.array(self.r1)
        over = t - tc
        cap = np.where(over < 0, self.cap0, self.cap1)
        x1, x2 = q @ lat, q @ dor
        a, b = ab[:, 0], ab[:, 1]
        r = np.sqrt((x1 / a) ** 2 + (x2 / b) ** 2 + (over / cap) ** 2)
        g = np.sqrt((x1 / a**2) ** 2 + (x2 / b**2) ** 2 + (over / cap**2) ** 2)
        return (r * r - 1.0) / np.maximum(2.0 * g, 1e-9)


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid with centre ``c``, orthonormal axes (rows of ``axes``) and semi-axes ``s`` (mm)."""

    c: np.ndarray
    axes: np.ndarray
    s: np.ndarray

    def distance(self, p: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm) of points ``p (N, 3)``."""
        q = (p - self.c) @ self.axes.T
        r2 = ((q / self.s) ** 2).sum(axis=1)
        g = np.linalg.norm(q / self.s**2, axis=1)
        return (r2 - 1.0) / np.maximum(2.0 * g, 1e-9)


def mcp_line(w: np.ndarray) -> np.ndarray:
    """u (mm) of the MCP line at lateral position ``w`` (piecewise linear through the four MCPs, extrapolated)."""
    pts = sorted((v[1], v[0]) for v in anatomy.MCP_UWH.values())
    ws = np.array([p[0] for p in pts])
    us = np.array([p[1] for p in pts])
    out = np.interp(w, ws, us)
    lo_slope = (us[1] - us[0]) / (ws[1] - ws[0])
    hi_slope = (us[-1] - us[-2]) / (ws[-1] - ws[-2])
    out = np.where(w < ws[0], us[0] + (w - ws[0]) * lo_slope, out)
    return np.where(w > ws[-1], us[-1] + (w - ws[-1]) * hi_slope, out)


def palm_sections(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Half-breadth A, half-thickness B, centre w and centre h of the palm section at ``u`` (mm)."""
    sec = np.array(anatomy.PALM_SECTIONS)
    a = np.interp(u, sec[:, 0], sec[:, 1]) / 2
    b = np.interp(u, sec[:, 0], sec[:, 2]) / 2
    wc = np.interp(u, sec[:, 0], sec[:, 3])
    hc = np.interp(u, sec[:, 0], sec[:, 4])
    return a, b, wc, hc


def palm_body_distance(p: np.ndarray) -> np.ndarray:
    """Approximate signed distance (mm) to the palm body (generalised cylinder with rounded ends)."""
    u, w, h = p[:, 0], p[:, 1], p[:, 2]
    a, b, wc, hc = palm_sections(u)
    n = PALM_EXPONENT
    xw, xh = np.abs(w - wc) / a, np.abs(h - hc) / b
    xw, xh = np.maximum(xw, 1e-9), np.maximum(xh, 1e-9)
    r = (xw**n + xh**n) ** (1 / n)
    # Gradient of r with respect to (w, h).
    gw = xw ** (n - 1) * r ** (1 - n) / a
    gh = xh ** (n - 1) * r ** (1 - n) / b
    d_cs = (r - 1.0) / np.maximum(np.sqrt(gw**2 + gh**2), 1e-9)
    dors, palm = anatomy.PALM_DISTAL_OVERHANG
    t = np.clip((hc + b - h) / (2 * b), 0.0, 1.0)  # 0 on the dorsum, 1 on the palmar face
    u_end = mcp_line(w) + dors + (palm - dors) * t
    u0 = anatomy.PALM_SECTIONS[0][0]
    return smax([d_cs, u - u_end, u0 - u], K_END)


def _frame_lateral(d: np.ndarray, dorsal: np.ndarray) -> np.ndarray:
    lat = np.cross(dorsal, d)  # (u, w, h) right-handed: h x u = +w for a finger along +u
    return lat / np.linalg.norm(lat)


@dataclass
class HandSurface:
    """The implicit hand surface of a skeleton (anatomical mm coordinates).

    Attributes:
        skel: the rest skeleton.
        digits: per digit name, its capsules (base to tip).
        palm_extras: ellipsoids blended into the palm body (thenar, hypothenar, knuckles).
    """

    skel: anatomy.Skeleton
    digits: dict[str, list[Capsule]]
    palm_extras: list[Ellipsoid]

    @classmethod
    def from_skeleton(cls, skel: anatomy.Skeleton) -> HandSurface:
        """Build the primitives from the skeleton and the tables of :mod:`.anatomy`."""
        digits: dict[str, list[Capsule]] = {}
        for f in FINGER_NAMES:
            caps = []
            for k, j in enumerate(FINGER_JOINTS[f]):
                p0 = skel.joints[j]
                p1 = skel.segment_end(j)
                r0, r1 = tuple(skel.radii[j, 0]), tuple(skel.radii[j, 1])
                d = (p1 - p0) / np.linalg.norm(p1 - p0)
                if k == 2:  # distal segment: the capsule's end cap touches the fingertip point
                    p1 = p1 - d * r1[1]
                lat = _frame_lateral(d, skel.dorsal[j])
                caps.append(Capsule(p0=p0, p1=p1, lateral=lat, r0=r0, r1=r1, cap0=min(r0), cap1=r1[1]))
            digits[f] = caps
        extras = []
        # Thenar eminence along the thumb metacarpal.
        cmc, mcp = skel.joints[13], skel.joints[14]
        d = (mcp - cmc) / np.linalg.norm(mcp - cmc)
        off, semi = anatomy.THENAR
        lat = _frame_lateral(d, skel.dorsal[13])
        dor = np.cross(d, lat)
        extras.append(Ellipsoid(c=(cmc + mcp) / 2 + np.array(off), axes=np.stack([d, lat, dor]), s=np.array(semi)))
        c, semi = anatomy.HYPOTHENAR
        extras.append(Ellipsoid(c=np.array(c), axes=np.eye(3), s=np.array(semi)))
        # Knuckles: metacarpal heads, slightly dorsal and proximal of the MCP joint centres.
        for f in ("index", "middle", "ring", "pinky"):
            j = FINGER_JOINTS[f][0]
            a, b = skel.radii[j, 0]
            centre = skel.joints[j] + np.array([-4.0, 0.0, 2.0])
            extras.append(Ellipsoid(c=centre, axes=np.eye(3), s=np.array([a * 1.05, a * 1.0, b * 1.08])))
        return cls(skel=skel, digits=digits, palm_extras=extras)

    def palm_distance(self, p: np.ndarray) -> np.ndarray:
        """Distance (mm) to the palm with its eminences and knuckles."""
        return smin([palm_body_distance(p)] + [e.distance(p) for e in self.palm_extras], K_PALM)

    def digit_distance(self, p: np.ndarray, finger: str) -> np.ndarray:
        """Distance (mm) to one digit's capsules (blended along the digit)."""
        return smin([c.distance(p) for c in self.digits[finger]], K_DIGIT)

    def distance(self, p: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm, negative inside) of points ``p (N, 3)`` (u, w, h mm)."""
        palm = self.palm_distance(p)
        per_digit = [smin([palm, self.digit_distance(p, f)], K_ATTACH) for f in FINGER_NAMES]
        return np.min(np.stack(per_digit), axis=0)

    def distance_and_gradient(self, p: np.ndarray, eps: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
        """Distance (N,) and its central-difference gradient (N, 3), from one batched evaluation."""
        n = len(p)
        offsets = np.concatenate([np.zeros((1, 3)), np.eye(3) * eps, -np.eye(3) * eps])
        d = self.distance((p[None] + offsets[:, None]).reshape(-1, 3)).reshape(7, n)
        g = (d[1:4] - d[4:7]).T / (2 * eps)
        return d[0], g

    def gradient(self, p: np.ndarray, eps: float = 0.02) -> np.ndarray:
        """Central-difference gradient of :meth:`distance` (N, 3)."""
        return self.distance_and_gradient(p, eps)[1]

    def project(self, p: np.ndarray, steps: int = 4, max_step: float = 4.0) -> np.ndarray:
        """Move points onto the surface by damped Newton steps along the gradient.

        Args:
            p: (N, 3) points (mm).
            steps: Newton iterations.
            max_step: largest move per iteration (mm), for stability far from the surface.

        Returns:
            (N, 3) projected points.
        """
        p = p.copy()
        for _ in range(steps):
            d, g = self.distance_and_gradient(p)
            gn2 = np.maximum((g * g).sum(axis=1), 1e-12)
            step = (d / gn2)[:, None] * g
            norm = np.linalg.norm(step, axis=1, keepdims=True)
            step *= np.minimum(1.0, max_step / np.maximum(norm, 1e-12))
            p -= step
        return p

    def part_distances(self, p: np.ndarray) -> np.ndarray:
        """(N, 16) distance (mm) of points to each part: palm (column 0) and each digit segment's capsule."""
        out = np.zeros((p.shape[0], 16))
        out[:, 0] = self.palm_distance(p)
        for f in FINGER_NAMES:
            for j, cap in zip(FINGER_JOINTS[f], self.digits[f], strict=True):
                out[:, j] = cap.distance(p)
        return out
