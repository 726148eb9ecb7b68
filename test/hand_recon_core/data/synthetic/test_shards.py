"""Shards: exact round trip, ``ShardDataset``, the ``hand-recon synth`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hand_recon_core.data.synthetic import ShardDataset, SyntheticDataset, build_synthetic_dataset
from hand_recon_core.data.synthetic.ground_truth import EXTRA_KEYS
from hand_recon_core.data.synthetic.shards import decode_sample, encode_sample
from hand_recon_core.data.synthetic.writer import generate_shards


def _assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b), set(a) ^ set(b)
    for k in a:
        if isinstance(a[k], str):
            assert a[k] == b[k], k
        else:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            assert a[k].tobytes() == b[k].tobytes(), k


def test_encode_decode_is_exact(family_samples):
    for samples in family_samples.values():
        for s in samples:
            _assert_same(decode_sample(encode_sample(s)), s)


def test_depth_beyond_the_png_range_is_stored_raw(family_samples):
    s = dict(family_samples["single"][0])
    s["depth"] = (s["depth"].astype(np.float64) * 20).astype(np.float32)  # up to ~10+ m
    s["depth"] = decode_sample(encode_sample(s))["depth"]  # quantised like the engine does
    enc = encode_sample(s)
    assert "depth.u32" in enc or s["depth"].max() < 6.5
    _assert_same(decode_sample(enc), s)


def test_shard_round_trip_and_index(tmp_path, hand_models):
    meta, kept = generate_shards("hand_object", 5, tmp_path, size=80, seed=4, shard_size=2, keep=1, progress=False)
    assert [s["count"] for s in meta["shards"]] == [2, 2, 1]
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["format"] == "hand_recon-synth-shards" and index["family"] == "hand_object"
    assert index["count"] == 5 and index["size"] == 80 and index["seed"] == 4 and index["version"] == 1
    ref = SyntheticDataset("hand_object", count=5, size=80, seed=4, extras=True)
    full = ShardDataset(tmp_path, extras=True)
    core = ShardDataset(tmp_path)
    assert len(full) == 5
    for i in (4, 0, 3, 1, 2):  # out of order: shards are reopened
        _assert_same(full[i], ref[i])
        assert not set(core[i]) & set(EXTRA_KEYS)
    _assert_same(kept[0], ref[0])
    ds = build_synthetic_dataset("hand-object", shards=tmp_path)
    assert isinstance(ds, ShardDataset) and len(ds) == 5
    with pytest.raises(ValueError):
        build_synthetic_dataset("single", shards=tmp_path)
    with pytest.raises(IndexError):
        full[5]


def test_a_list_of_shard_directories_is_read_in_order(tmp_path, hand_models):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_shards("single", 3, a, size=64, seed=1, shard_size=2, progress=False)
    generate_shards("single", 2, b, size=64, seed=9, shard_size=2, progress=False)
    ds = build_synthetic_dataset("single", shards=[str(a), b])
    assert len(ds) == 5
    _assert_same(ds[3], ShardDataset(b)[0])
    _assert_same(ds[2], ShardDataset(a)[2])
    with pytest.raises(ValueError, match="empty"):
        build_synthetic_dataset("single", shards=[])
    with pytest.raises(ValueError, match="hold family 'single'"):
        build_synthetic_dataset("multi", shards=[a, b])


def test_synth_command_writes_shards_and_a_preview(tmp_path, hand_models):
    from hand_recon_core.cli.main import main

    out = tmp_path / "out"
    rc = main(["synth", "--family", "multi", "--count", "3", "--size", "96", "--out", str(out), "--seed", "1",
               "--shard-size", "2", "--preview", "--preview-count", "2", "--quiet", "--param", "num_hands=[1, 3]"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "shard_00000.npz", "shard_00001.npz",
                                                     "synth_multi.png"]
    ds = ShardDataset(out, extras=True)
    ref = SyntheticDataset("multi", count=3, size=96, seed=1, extras=True, num_hands=[1, 3])
    _assert_same(ds[2], ref[2])
    assert 1 <= len(ds[0]["handedness"]) <= 3
    import cv2

    sheet = cv2.imread(str(out / "synth_multi.png"))
    assert sheet is not None and sheet.shape[1] == 5 * 192


def test_two_workers_write_the_same_shards(tmp_path, hand_models):
    generate_shards("single", 6, tmp_path / "one", size=64, seed=3, shard_size=4, workers=1, progress=False)
    generate_shards("single", 6, tmp_path / "two", size=64, seed=3, shard_size=4, workers=2, progress=False)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) and "shard_00001.npz" in names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
