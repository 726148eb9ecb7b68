"""Shared fixtures of the synthetic-engine tests: a small cache of generated samples (the open hand model)."""

from __future__ import annotations

import pytest

from hand_recon_core.hand_model.loader import OPEN_MODEL_PATH

#: Small image sides keep the tests fast (the engine's cost is dominated by the pixel count).
TEST_SIZES = {"single": 128, "interacting": 128, "multi": 192, "hand_object": 128}
#: Indices generated per family (seed 3).
TEST_INDICES = (0, 1)


@pytest.fixture(scope="session")
def hand_models():
    """The open hand model's layers (skips when the asset is missing)."""
    if not OPEN_MODEL_PATH.is_file():
        pytest.skip(f"open hand-model asset missing: {OPEN_MODEL_PATH}")
    from hand_recon_core.data.synthetic.hands import get_hand_models

    return get_hand_models("open")


@pytest.fixture(scope="session")
def family_samples(hand_models) -> dict[str, list[dict]]:
    """Two samples (with extras) of every family at small sizes, seed 3."""
    from hand_recon_core.data.synthetic import generate_sample

    return {f: [generate_sample(f, i, 3, s, extras=True) for i in TEST_INDICES] for f, s in TEST_SIZES.items()}
