"""Run logs: CSV rows, TensorBoard events (read back) and the curves PNG; a resumed run drops later rows."""

from __future__ import annotations

import pytest

from hand_recon_core.training.logs import RunLogger, read_csv_rows


def test_csv_tensorboard_and_curves(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra (train)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLogger(tmp_path, tensorboard=True)
    for step in (10, 20, 30):
        log.log("train", step, step / 30, {"loss": 1.0 / step, "lr": 1e-3})
    log.log("val", 30, 1.0, {"val/loss": 0.5})
    png = log.close()
    assert png == tmp_path / "curves.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_csv_rows(tmp_path / "logs" / "train.csv")
    assert [r["step"] for r in rows] == [10, 20, 30] and rows[1]["loss"] == pytest.approx(0.05)
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [10, 20, 30]
    assert acc.Scalars("train/loss")[2].value == pytest.approx(1 / 30)
    assert [e.value for e in acc.Scalars("val/loss")] == [0.5]

    # resume at step 20: the step-30 rows of the killed run go, new ones follow
    resumed = RunLogger(tmp_path, tensorboard=False, resume_step=20)
    resumed.log("train", 30, 1.0, {"loss": 0.9, "lr": 1e-3})
    resumed.close(curves=False)
    assert [(r["step"], r["loss"]) for r in read_csv_rows(tmp_path / "logs" / "train.csv")][1:] == [
        (20, pytest.approx(0.05)), (30, pytest.approx(0.9))]


def test_other_ranks_write_nothing(tmp_path):
    log = RunLogger(tmp_path / "r1", enabled=False)
    log.log("train", 1, 0.0, {"loss": 1.0})
    assert log.close() is None and not (tmp_path / "r1").exists()
