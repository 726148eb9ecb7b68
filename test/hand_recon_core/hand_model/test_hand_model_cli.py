"""Tests of ``hand-recon hand-model`` (the CLI module hand_recon_core.cli.hand_model)."""

from __future__ import annotations

import json

import pytest

from hand_recon_core.cli.main import main


def test_info(tmp_path, capsys):
    out = tmp_path / "info.json"
    assert main(["hand-model", "info", "--side", "left", "--json", str(out)]) == 0
    info = json.loads(out.read_text())
    assert info["model_id"] == "open-v1-left" and info["closed_manifold"] and info["boundary_edges"] == 0
    assert 0.18 <= info["hand_length_m"] <= 0.19
    assert "open-v1-left" in capsys.readouterr().out


def test_render_grid(tmp_path):
    pytest.importorskip("hand_recon_core.render.rasterizer")
    cv2 = pytest.importorskip("cv2")
    out = tmp_path / "grid.png"
    assert main(["hand-model", "render-grid", "--out", str(out), "--size", "40"]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (2 * (40 + 24), 8 * 40, 3)


def test_generate_write_and_check(tmp_path, monkeypatch):
    # The generator itself is tested in test_open_model; here it is replaced by the packaged asset.
    from hand_recon_core.hand_model.loader import load_hand_model_data
    from hand_recon_core.hand_model.open_model import generate

    monkeypatch.setattr(generate, "generate_open_model", lambda: load_hand_model_data("open", "right"))
    out = tmp_path / "model.npz"
    assert main(["hand-model", "generate", "--out", str(out)]) == 0
    assert main(["hand-model", "generate", "--out", str(out), "--check"]) == 0
    out.write_bytes(b"not a model")
    assert main(["hand-model", "generate", "--out", str(out), "--check"]) == 1
