"""hand_recon_core.training (see the package docstring)."""
