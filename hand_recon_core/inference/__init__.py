"""hand_recon_core.inference (see the package docstring)."""
