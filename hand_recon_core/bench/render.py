"""``hand-recon bench render``: images/s of :func:`hand_recon_core.render.rasterizer.render_meshes`.

The scenes do not use the hand model: every "hand" is :func:`test_mesh`, a closed, bumpy, flattened ellipsoid
of hand size and hand-like triangle count, posed randomly (mostly facing the camera) at 0.4-0.6 m. The focal
length is chosen per hand count so that the hands cover roughly half of the image (the measured coverage is
reported). Each configuration renders a fixed set of scenes (different poses, colours, lights, backgrounds)
in turn with ``torch.set_num_threads(--threads)`` (the renderer is numpy, single-threaded). Reported:
wall-clock ``images_per_s`` (with mean / p50 / p95 / min ms per image) and ``images_per_cpu_s`` from the
process CPU time, which is what one core delivers when the machine is shared. Unless
``--default-allocator`` is given, :func:`reuse_freed_memory` is called first, as data-generation workers
should.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time
from collections.abc import Iterator

import numpy as np

from hand_recon_core.bench.timing import summarize_ms, time_callable
from hand_recon_core.render.backgrounds import gradient_background
from hand_recon_core.render.primitives import sphere_mesh
from hand_recon_core.render.rasterizer import render_meshes, reuse_freed_memory, sh_from_directional_light

#: hand-sized semi-axes of the test mesh (metres): 8 cm wide, 19 cm long, 3.6 cm thick
_SEMI_AXES = (0.04, 0.095, 0.018)


def test_mesh() -> tuple[np.ndarray, np.ndarray]:
    """A closed hand-sized test mesh: 770 vertices, 1536 faces (MANO: 778 / 1538-1552).

    A UV sphere (33 latitude bands x 24 segments) scaled to 0.08 x 0.19 x 0.036 m with a smooth radial bump
    pattern (so it self-occludes a little), centred at the origin, long axis along y, outward CCW faces.

    Returns:
        ``(vertices (770, 3) float32 metres, faces (1536, 3) int32)``.
    """
    v, f = sphere_mesh(1.0, rings=33, segments=24)
    v = v.astype(np.float64)
    theta = np.arccos(np.clip(v[:, 2], -1.0, 1.0))
    phi = np.arctan2(v[:, 1], v[:, 0])
    bump = 1.0 + 0.12 * np.sin(5.0 * phi) * np.sin(theta) ** 2 + 0.06 * np.cos(3.0 * theta)
    v = v * bump[:, None] * np.array([_SEMI_AXES[0], _SEMI_AXES[1], _SEMI_AXES[2]])
    return v.astype(np.float32), f


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """Random rotation: any in-plane angle, tilt up to +-60 degrees about x and y."""
    a, b, c = rng.uniform(-np.pi, np.pi), rng.uniform(-1.05, 1.05), rng.uniform(-1.05, 1.05)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


def make_scene(size: int, n_hands: int, rng: np.random.Generator, target_coverage: float = 0.7) -> dict:
    """Keyword arguments of :func:`render_meshes` for one random scene of ``n_hands`` test meshes.

    Args:
        size: image side in pixels (square image).
        n_hands: number of meshes.
        rng: random generator (poses, colours, light, background).
        target_coverage: approximate fraction of the image covered by the hands (sets the focal length).

    Returns:
        dict with ``vertices, faces, vertex_colors, K, size, sh_coeffs, background``.
    """
    v0, f0 = test_mesh()
    # projected area of one hand ~ pi a b (f / z)^2 at z = 0.5 m, total ~ target_coverage * size^2
    area = np.pi * _SEMI_AXES[0] * _SEMI_AXES[1] / 0.25
    focal = size * np.sqrt(target_coverage / (n_hands * area))
    K = np.array([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    half_fov = 0.5 * size / focal
    verts, faces, colors = [], [], []
    for _ in range(n_hands):
        z = rng.uniform(0.4, 0.6)
        xy = rng.uniform(-0.7, 0.7, size=2) * half_fov * z
        verts.append((v0 @ _rotation(rng).T + np.array([xy[0], xy[1], z])).astype(np.float32))
        faces.append(f0)
        tone = rng.uniform(0.5, 0.9) * np.array([1.0, 0.8, 0.65]) + rng.uniform(-0.05, 0.05, 3)
        colors.append(np.clip(np.tile(tone, (v0.shape[0], 1)) + rng.normal(0.0, 0.03, v0.shape), 0, 1))
    light = sh_from_directional_light(rng.normal(size=3) * [1, 1, 0.3] + [0, 0, -1],
                                      intensity=rng.uniform(0.4, 0.8), ambient=rng.uniform(0.2, 0.5))
    return {"vertices": verts, "faces": faces, "vertex_colors": colors, "K": K, "size": (size, size),
            "sh_coeffs": light, "background": gradient_background((size, size), rng)}


def _render_next(scenes: Iterator[dict], antialias: bool) -> None:
    render_meshes(**next(scenes), antialias=antialias)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sides (px)")
    parser.add_argument("--hands", type=int, nargs="+", default=[2, 10], help="meshes per scene")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (numpy: single thread)")
    parser.add_argument("--scenes", type=int, default=8, help="distinct random scenes per configuration")
    parser.add_argument("--repeats", type=int, default=40, help="timed renders per configuration")
    parser.add_argument("--no-antialias", action="store_true", help="also time without anti-aliasing")
    parser.add_argument("--default-allocator", action="store_true",
                        help="do not call reuse_freed_memory() first (glibc trims and re-faults the heap)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    if not args.default_allocator:
        reuse_freed_memory()
    results: dict = {"threads": args.threads, "allocator": "default" if args.default_allocator else "reuse",
                     "configs": []}
    modes = [True, False] if args.no_antialias else [True]
    warmup = 3
    for size in args.sizes:
        for n_hands in args.hands:
            rng = np.random.default_rng(args.seed)
            scenes = [make_scene(size, n_hands, rng) for _ in range(args.scenes)]
            coverage = float(np.mean([(render_meshes(**s, antialias=False).mesh_id >= 0).mean()
                                      for s in scenes]))
            for aa in modes:
                render = functools.partial(_render_next, itertools.cycle(scenes), aa)
                cpu0 = time.process_time()
                stats = summarize_ms(time_callable(render, repeats=args.repeats, warmup=warmup))
                cpu_ms = (time.process_time() - cpu0) * 1e3 / (args.repeats + warmup)
                results["configs"].append({
                    "size": size, "hands": n_hands, "antialias": aa, "coverage": round(coverage, 3),
                    "images_per_s": round(1e3 / stats["mean_ms"], 1),
                    "images_per_cpu_s": round(1e3 / cpu_ms, 1), "cpu_ms": round(cpu_ms, 3),
                    **{k: round(v, 3) for k, v in stats.items()}})
    return results
