"""hand_recon_core.hand_model (see the package docstring)."""
