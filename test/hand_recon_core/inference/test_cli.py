"""Tests of the inference command lines: ``hand-recon infer``, ``hand-recon export``, ``hand-recon bench scaling``.

(They live next to the inference tests because they exercise the pipeline end to end on tiny models.)
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from hand_recon_core.cli.main import main
from hand_recon_core.inference.backends import tensorrt_unavailable_reason


@pytest.fixture
def checkpoint(tiny_model, perturb, write_checkpoint, tmp_path):
    loaded = tiny_model("single_stage")
    perturb(loaded)
    return write_checkpoint(tmp_path / "det.pt", loaded)


@pytest.fixture
def image_folder(tmp_path, interacting_sample, multi_sample):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, s in (("a", interacting_sample), ("b", multi_sample)):
        assert cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(s["image"], cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_infer_on_a_folder_writes_an_overlay_and_a_json_per_image(checkpoint, image_folder, tmp_path, capsys,
                                                                   interacting_sample):
    out = tmp_path / "out"
    rc = main(["infer", "--checkpoint", str(checkpoint), "--input", str(image_folder), "--out", str(out),
               "--score-threshold", "0", "--max-hands", "2", "--quiet", "--track"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["a_overlay.png", "b_overlay.png"]
    assert sorted(p.name for p in out.glob("*.json")) == ["a.json", "b.json"]
    a = json.loads((out / "a.json").read_text())
    assert a["image_size"] == [128, 128] and len(a["hands"]) == 2
    assert len(a["hands"][0]["joints_3d"]) == 21 and a["hands"][0]["track_id"] >= 0
    overlay = cv2.imread(str(out / "a_overlay.png"))
    assert overlay.shape == (128, 128, 3)
    assert not np.array_equal(cv2.cvtColor(overlay, cv2.COLOR_BGR2RGB), interacting_sample["image"])  # drawn on
    b = json.loads((out / "b.json").read_text())
    assert b["image_size"] == [128, 96]
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 2 and summary["detector"] == "single_stage" and summary["backend"] == "torch"


def test_infer_reports_a_missing_input(checkpoint, tmp_path, capsys):
    rc = main(["infer", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert rc == 2 and "no such file" in capsys.readouterr().err


def test_export_onnx_prints_a_passing_parity_check(checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    out = tmp_path / "det.onnx"
    rc = main(["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and out.is_file() and report["parity"] == "PASS"
    assert max(report["max_abs_diff_vs_torch"].values()) <= 1e-4
    assert report["input"] == ["image", [1, 3, 64, 64]]


def test_export_package_halves_the_file_and_predicts_like_the_original(checkpoint, tmp_path, capsys,
                                                                       interacting_sample):
    from hand_recon_core.inference.pipeline import Pipeline
    from hand_recon_core.training.checkpoint import load_checkpoint

    out = tmp_path / "pkg" / "detector.pt"
    rc = main(["export", "--checkpoint", str(checkpoint), "--format", "package", "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["precision"] == "fp16"
    packed = load_checkpoint(out)
    assert "optimizer" not in packed and packed["packed"]["fp16"]
    assert all(v.dtype != torch.float32 for v in packed["model"].values())
    assert out.stat().st_size < 0.6 * checkpoint.stat().st_size
    kw = {"score_threshold": 0.0, "max_hands": 2}
    a = Pipeline.from_checkpoint(checkpoint, **kw)(interacting_sample["image"], interacting_sample["K"])
    b = Pipeline.from_checkpoint(out, **kw)(interacting_sample["image"], interacting_sample["K"])
    assert len(a.hands) == len(b.hands) == 2
    for ha, hb in zip(a.hands, b.hands):
        np.testing.assert_allclose(hb.joints_3d, ha.joints_3d, atol=5e-3)  # fp16 weights: millimetres


def test_eval_through_the_pipeline_with_a_refiner_and_the_mean_pose_baseline(checkpoint, tiny_model,
                                                                             write_checkpoint, tmp_path, capsys):
    refiner = write_checkpoint(tmp_path / "ref.pt", tiny_model("dir"))
    out = tmp_path / "eval"
    rc = main(["eval", "--checkpoint", str(checkpoint), "--refiner", str(refiner), "--baseline", "mean-pose",
               "--data", "synthetic-interacting:count=3,size=96,seed=4", "--out", str(out),
               "--score-threshold", "0", "--max-hands", "2"])
    result = json.loads(capsys.readouterr().out)
    assert rc == 0 and result["through"] == "Pipeline" and result["refiner"] == str(refiner)
    assert result["num_images"] == 3 and result["num_gt_hands"] == 6 and result["num_pred_hands"] == 6
    assert result["hands_refined"] % 2 == 0 and result["hands_refined"] <= 6  # refined in left-right pairs
    assert (out / "metrics.json").is_file() and (out / "baseline_mean-pose" / "metrics.json").is_file()
    base = result["baseline"]
    assert base["num_matched"] == result["num_matched"]  # the same detections, only the 3D hands differ
    assert result["num_matched"] > 0
    m, b = result["metrics"]["mpjpe/wrist"]["value"], base["metrics"]["mpjpe/wrist"]["value"]
    assert m is not None and b is not None and m != b


def test_export_tensorrt_fails_clearly_where_unavailable(checkpoint, tmp_path, capsys):
    reason = tensorrt_unavailable_reason("cuda")
    if reason is None:
        pytest.skip("TensorRT is available here (the build itself is covered by test_backends)")
    rc = main(["export", "--checkpoint", str(checkpoint), "--format", "tensorrt", "--out", str(tmp_path / "x.plan")])
    err = capsys.readouterr().err
    assert rc == 2 and "TensorRT" in err and reason in err


def test_bench_scaling_writes_the_plot_and_ratios(tmp_path, capsys):
    plot = tmp_path / "scaling.png"
    rc = main(["bench", "scaling", "--hands", "1", "2", "--size", "64", "--crop-size", "32", "--repeats", "1",
               "--warmup", "0", "--plot", str(plot)])
    assert rc == 0 and plot.is_file()
    result = json.loads(capsys.readouterr().out)
    assert [r["hands"] for r in result["results"]] == [1, 2]
    for r in result["results"]:
        assert r["hands_decoded"] == r["hands"] and r["ratio"] == pytest.approx(
            r["two_stage_ms"] / r["single_stage_ms"], abs=0.01)
