"""Smoke test of the hand-layer benchmark module (tiny settings; speed is measured by the CLI, not here)."""

from __future__ import annotations

import argparse

from hand_recon_core.bench import hand_layer


def test_benchmark_runs_and_reports():
    parser = argparse.ArgumentParser()
    hand_layer.add_arguments(parser)
    args = parser.parse_args(["--batch", "4", "--repeats", "3", "--warmup", "1", "--pose-repr", "pca"])
    res = hand_layer.run(args)
    assert res["batch"] == 4 and res["n"] == 3 and res["model_id"] == "open-v1-right"
    assert res["p50_ms"] > 0 and res["hands_per_s"] > 0
