"""training/compare_curves.py: overlay of several runs' training curves."""

from __future__ import annotations

from pathlib import Path

import pytest


def _run(path: Path, rows: list[str]) -> Path:
    (path / "logs").mkdir(parents=True)
    (path / "logs" / "train.csv").write_text("step,epoch,loss,joints_3d\n" + "\n".join(rows) + "\n")
    return path


def test_reads_logs_and_writes_one_figure(tmp_path, curves):
    a = _run(tmp_path / "a", ["25,0.1,3.0,0.15", "50,0.2,2.5,"])
    b = _run(tmp_path / "b", ["25,0.1,2.0,0.12"])
    rows = curves.read_train_csv(a)
    assert rows[0] == {"step": 25.0, "epoch": 0.1, "loss": 3.0, "joints_3d": 0.15}
    assert "joints_3d" not in rows[1]  # empty cell dropped, not read as 0
    out = tmp_path / "fig" / "cmp.png"
    assert curves.main(["--run", f"A={a}", "--run", f"B={b}", "--metric", "loss", "--metric", "joints_3d",
                        "--offset", "B=50", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_are_explained(tmp_path, curves):
    a = _run(tmp_path / "a", ["25,0.1,3.0,0.15"])
    with pytest.raises(SystemExit, match="LABEL=VALUE"):
        curves.main(["--run", str(a), "--metric", "loss", "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="unknown runs"):
        curves.main(["--run", f"A={a}", "--metric", "loss", "--offset", "C=5", "--out", str(tmp_path / "x.png")])
    with pytest.raises(FileNotFoundError, match="no training log"):
        curves.read_train_csv(tmp_path / "missing")
