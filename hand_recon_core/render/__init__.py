"""hand_recon_core.render (see the package docstring)."""
