"""Benchmarks run by ``hand-recon bench NAME`` (see :mod:`hand_recon_core.cli.bench`).

Helpers shared by the benchmark modules live in :mod:`hand_recon_core.bench.timing`.
"""
