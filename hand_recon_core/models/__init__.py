"""hand_recon_core.models (see the package docstring)."""
