"""hand_recon_core.data (see the package docstring)."""
