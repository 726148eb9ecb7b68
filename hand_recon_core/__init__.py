"""hand_recon_core: pure PyTorch hand mesh reconstruction (no ROS imports).

Subpackages:
    hand_model  MANO-compatible hand layer, official MANO loader, the open hand model.
    geometry    batched rotations, cameras, Procrustes alignment.
    metrics     MPJPE/MPVPE (with explicit alignment), PCK/AUC, F-score, MRRPE, MIAA, penetration.
    render      fast rasterizer for synthetic data and overlays; differentiable soft rasterizer.
    data        synthetic scene engine, real-dataset loaders, augmentation, target encoders.
    models      backbones, shared blocks and the five methods.
    training    the training/evaluation engine shared by all methods.
    inference   Pipeline, backends, export.
    bench       benchmarks run by ``hand-recon bench NAME``.
"""

__version__ = "0.1.0"
