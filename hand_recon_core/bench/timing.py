"""Timing helpers for benchmarks: warm-up, repeated timing, percentile summaries."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_callable(fn: Callable[[], object], repeats: int = 50, warmup: int = 5,
                  sync: Callable[[], None] | None = None) -> np.ndarray:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls.

    Args:
        fn: the work to time (its result is discarded).
        repeats: number of timed calls.
        warmup: number of untimed calls first (JIT, caches, allocator).
        sync: called after each call before the clock stops (e.g. ``torch.cuda.synchronize``).

    Returns:
        (repeats,) float64 array of seconds per call.
    """
    for _ in range(warmup):
        fn()
        if sync is not None:
            sync()
    out = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        out[i] = time.perf_counter() - t0
    return out


def summarize_ms(seconds: np.ndarray) -> dict[str, float]:
    """Summarise per-call times (seconds) as milliseconds: mean, p50, p95, min."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "min_ms": float(ms.min()),
        "n": int(ms.size),
    }
