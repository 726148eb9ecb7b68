"""hand_recon_core.metrics (see the package docstring)."""
