"""Rendering: a fast numpy z-buffer rasterizer for synthetic data and overlays, and a differentiable soft
rasterizer (torch) for photometric / silhouette losses.

Modules:

* :mod:`.rasterizer` -- :func:`render_meshes` (image + exact depth / mesh id / face id / barycentric maps),
  vertex normals, 27-coefficient spherical-harmonics lighting.
* :mod:`.soft_rasterizer` -- SoftRas-style differentiable silhouettes and colour images (imports torch, so it
  is not imported here).
* :mod:`.primitives` -- closed boxes, cylinders and spheres (occluders, props).
* :mod:`.textures` -- procedural per-vertex colours (checker, value noise).
* :mod:`.backgrounds` -- procedural and image-folder backgrounds.
* :mod:`.overlay` -- mesh renders and 2D skeletons drawn over RGB images.

All geometry is in the camera frame (OpenCV/ROS optical frame: x right, y down, z forward, metres); pixel
centres are at integer + 0.5 (see :mod:`.rasterizer`).
"""

from hand_recon_core.render.rasterizer import (
    DEFAULT_Z_NEAR,
    RenderResult,
    compute_vertex_normals,
    default_sh,
    render_meshes,
    reuse_freed_memory,
    sh_basis,
    sh_from_directional_light,
    sh_shading,
)

__all__ = [
    "DEFAULT_Z_NEAR",
    "RenderResult",
    "compute_vertex_normals",
    "default_sh",
    "render_meshes",
    "reuse_freed_memory",
    "sh_basis",
    "sh_from_directional_light",
    "sh_shading",
]
