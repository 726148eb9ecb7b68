"""hand_recon_core.geometry (see the package docstring)."""
