"""``hand-recon train`` / ``hand-recon eval`` / ``hand-recon bench train`` end to end on the toy method."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from hand_recon_core.cli.main import main
from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.render.primitives import sphere_mesh
from hand_recon_core.training.config import config_to_dict
from hand_recon_core.training.evaluation import evaluate_checkpoint
from hand_recon_core.training.visualize import render_prediction_panel, side_view_vertices


@pytest.fixture
def config_file(make_cfg, tmp_path):
    cfg = make_cfg("cli", train={"max_steps": 8}, data={"val": {"name": "toy-images", "kwargs": {"count": 8}}})
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    return path


def test_train_then_eval(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--config", str(config_file), "optim.lr=0.01", "train.max_steps=6", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "train/loss" in printed and "val/loss" in printed
    ckpt = out / "checkpoints" / "step_00000006.pt"
    assert ckpt.is_file() and (out / "config.yaml").is_file()
    assert yaml.safe_load((out / "config.yaml").read_text())["optim"]["lr"] == 0.01

    # resume from the file alone (its config), training further
    assert main(["train", "--resume", str(ckpt), "train.max_steps=8"]) == 0
    assert (out / "checkpoints" / "step_00000008.pt").is_file()
    capsys.readouterr()

    ev = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(ckpt), "--data", "toy-images:count=5,seed=9", "--out", str(ev)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_images"] == 5 and result["method"] == "toy" and result["step"] == 6
    assert result["metrics"]["mpjpe/pa"]["alignment"].startswith("root=none")
    assert (ev / "metrics.json").is_file()
    with (ev / "per_sample.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 5


def test_cli_errors_are_one_line_messages(config_file, capsys):
    assert main(["train", "--config", str(config_file), "optim.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "optim.lrr" in err and "'lr'" in err
    assert main(["train", "--config", str(config_file), "method.name=nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", "/nonexistent.pt", "--data", "toy-images"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_eval_writes_pictures_with_given_faces(config_file, tmp_path, monkeypatch):
    assert main(["train", "--config", str(config_file), "--out", str(tmp_path / "run")]) == 0
    v, f = sphere_mesh(0.02, rings=6, segments=8)

    def predict(self, model_out, batch):  # a sphere "hand" in front of the camera
        return [{"handedness": np.array([RIGHT]), "vertices_3d": (v + [0.0, 0.0, 0.5])[None].astype(np.float32),
                 "score": np.array([1.0]), "bbox": np.array([[2, 2, 14, 14]], np.float32)} for _ in model_out]

    from hand_recon_core.models.registry import get_method

    monkeypatch.setattr(get_method("toy"), "predict", predict)
    res = evaluate_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000008.pt", "toy-images:count=3",
                              tmp_path / "ev", vis=2, faces={RIGHT: f, LEFT: f[:, ::-1]}, max_samples=2)
    assert res["num_images"] == 2
    pics = sorted((tmp_path / "ev" / "vis").glob("*.png"))
    assert [p.name for p in pics] == ["00000.png", "00001.png"]


def test_prediction_panel_and_side_view():
    v, f = sphere_mesh(0.03, rings=8, segments=12)
    image = np.full((32, 40, 3), 20, np.uint8)
    K = np.array([[150.0, 0, 20], [0, 150.0, 16], [0, 0, 1]])
    pred = {"handedness": np.array([RIGHT, LEFT]),
            "vertices_3d": np.stack([v + [-0.02, 0, 0.5], v + [0.02, 0, 0.7]]).astype(np.float32)}
    panel = render_prediction_panel(image, K, pred, {RIGHT: f, LEFT: f})
    assert panel.shape == (32, 120, 3) and panel.dtype == np.uint8
    assert np.array_equal(panel[:, :40], image)
    overlay, side = panel[:, 40:80], panel[:, 80:]
    assert (np.abs(overlay.astype(int) - 20).sum(-1) > 30).mean() > 0.05  # the meshes cover part of the image
    assert (side != side[0, 0]).any()
    turned = side_view_vertices([np.array([[0.1, 0.0, 1.0]]), np.array([[-0.1, 0.0, 1.0]])])
    # the pair separated along x is separated along z after the quarter turn, centred on the optical axis
    assert np.allclose(turned[0][0], [0.0, 0.0, 0.9]) and np.allclose(turned[1][0], [0.0, 0.0, 1.1])


def test_bench_train_reports_samples_per_second():
    import argparse

    from hand_recon_core.bench import train as bench_train
    from hand_recon_core.cli.bench import BENCHMARKS

    assert BENCHMARKS["train"][0] == "train"
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    args = parser.parse_args(["--backbone", "resnet18", "--size", "32", "--batch", "2", "--steps", "1",
                              "--warmup", "0"])
    result = bench_train.run(args)
    assert result["samples_per_s"] > 0 and result["cpu_s_per_sample"] > 0
    assert result["backbone"] == "resnet18" and result["device"] == "cpu"
