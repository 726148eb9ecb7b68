"""Heads shared by the centre-based methods.

Modules:
    center  centre-heatmap target encoding, CenterNet focal loss, peak decoding, cell indexing helpers.
    single_stage  the single-stage method's per-cell heads (feature fusion, keypoint branch, per-cell regressors).
"""
