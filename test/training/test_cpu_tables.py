"""training/cpu_tables.py: the tables of the CPU reproduction and the packaging gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _metrics(mpjpe: float | None, recall: float) -> dict:
    entry = {"value": mpjpe, "unit": "m", "alignment": "wrist", "count": 10}
    return {"num_images": 5, "metrics": {"mpjpe/wrist": entry, "recall": {"value": recall, "unit": "1"},
                                         "detection_ap50": {"value": 0.5, "unit": "1"}}}


def _write(run: Path, ours: dict, base: dict) -> None:
    (run / "eval" / "baseline_mean-pose").mkdir(parents=True)
    (run / "eval" / "metrics.json").write_text(json.dumps(ours))
    (run / "eval" / "baseline_mean-pose" / "metrics.json").write_text(json.dumps(base))


@pytest.mark.parametrize(("ours", "recall", "passes"), [(0.05, 0.9, True), (0.09, 0.9, False), (0.05, 0.2, False),
                                                         (None, 0.9, False)])
def test_gate_needs_a_wide_margin_over_the_baseline_and_recall(tables, tmp_path, ours, recall, passes):
    _write(tmp_path / "single_stage", _metrics(ours, recall), _metrics(0.10, recall))
    assert tables.main(["--runs", str(tmp_path), "--gate", "single_stage"]) == (0 if passes else 1)


def test_tables_list_runs_and_copy_their_json(tables, tmp_path, capsys):
    _write(tmp_path / "runs" / "single_stage", _metrics(0.05, 0.9), _metrics(0.10, 0.9))
    out = tmp_path / "results"
    assert tables.main(["--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    text = (out / "RESULTS.md").read_text()
    assert "| single-stage without lifter (stages 0 + 1 on crops, stage 2 on scenes) |" in text
    assert "| 50.0 |" in text and "| 100.0 |" in text
    assert "(not run)" in text  # the other runs
    saved = json.loads((out / "single_stage.json").read_text())
    assert saved["baseline_mean_pose"]["metrics"]["mpjpe/wrist"]["value"] == 0.10


def test_rows_of_runs_made_elsewhere_come_from_their_json_or_the_previous_table(tables, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    _write(runs / "single_stage", _metrics(0.05, 0.9), _metrics(0.10, 0.9))
    assert tables.main(["--runs", str(runs), "--out", str(out)]) == 0
    stored = json.loads((out / "single_stage.json").read_text())
    assert stored["budget"] == "" and stored["metrics"]["mpjpe/wrist"]["value"] == 0.05
    # a row of an earlier session without JSON: its line in the previous RESULTS.md
    title = "Single-stage detector (single-hand held-out crops)"
    text = (out / "RESULTS.md").read_text().replace(
        "| single-stage + keypoint lifter (default) | (not run) |",
        "| single-stage + keypoint lifter (default) | 1000 steps x batch 32 | 500 | 81.8 |")
    assert f"## {title}" in text
    (out / "RESULTS.md").write_text(text)
    assert tables.main(["--runs", str(tmp_path / "elsewhere"), "--out", str(out)]) == 0  # no run folder at all
    text = (out / "RESULTS.md").read_text()
    assert "| single-stage without lifter (stages 0 + 1 on crops, stage 2 on scenes) |  | 5 | 50.0 |" in text
    assert "| mean-pose baseline at its detections |  | 5 | 100.0 |" in text  # the baseline kept in the JSON
    assert "| single-stage + keypoint lifter (default) (earlier session) | 1000 steps x batch 32 | 500 | 81.8 |" in text
    assert tables.main(["--runs", str(tmp_path / "elsewhere"), "--out", str(out)]) == 0  # stable when rerun
    assert (out / "RESULTS.md").read_text().count("(earlier session) (earlier session)") == 0


@pytest.mark.parametrize(("alone", "both", "passes"), [((0.08, 0.9), (0.07, 0.9), True),
                                                        ((0.08, 0.9), (0.09, 0.9), False),
                                                        ((0.08, 0.9), (0.07, 0.8), False)])
def test_refiner_gate_needs_the_pipeline_to_improve(tables, tmp_path, alone, both, passes):
    for name, (mpjpe, recall) in (("detector_alone", alone), ("detector_dir", both)):
        (tmp_path / "pipeline" / name).mkdir(parents=True)
        (tmp_path / "pipeline" / name / "metrics.json").write_text(json.dumps(_metrics(mpjpe, recall)))
    assert tables.main(["--runs", str(tmp_path), "--gate-refiner"]) == (0 if passes else 1)
    assert tables.main(["--runs", str(tmp_path / "nothing"), "--gate-refiner"]) == 1
