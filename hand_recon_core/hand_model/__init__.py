"""MANO-compatible hand models: the hand layer, model loaders, the open hand model, joint orders, mirroring.

Public API::

    from hand_recon_core.hand_model import load_hand_model, HandLayer, HandOutput
    layer = load_hand_model("open", side="right")          # or "mano", or a path to MANO_RIGHT.pkl
    out = layer(global_orient=go, hand_pose=pose, betas=betas, transl=t)
    out.vertices  # (B, V, 3) metres;  out.joints  # (B, 21, 3) in the canonical "mano21" order

Modules:
    constants      MANO kinematic tree, finger chains, fingertip conventions, mirror matrix.
    joint_orders   ``convert_joints`` between mano21 / openpose21 (= FreiHAND = MediaPipe) / interhand21.
    layer, lbs     ``HandLayer`` (linear blend skinning) and its primitives.
    loader         ``load_hand_model`` factory; ``load_hand_model_data`` for the raw arrays.
    model_data     ``HandModelData`` container, ``.npz`` storage, mirroring of a whole model.
    mano_pickle    restricted unpickler for official MANO files (no chumpy, no arbitrary code).
    mirror         right <-> left pose/vertex mirroring.
    pose_sampler   plausible poses (presets, random), two-hand interactions.
    mesh_checks    closedness, orientation, self-intersection and penetration tests.
    open_model     the deterministic generator of the open hand model asset.
"""

from hand_recon_core.hand_model.joint_orders import JOINT_NAMES, PARENTS, convert_joints
from hand_recon_core.hand_model.layer import HandLayer, HandOutput
from hand_recon_core.hand_model.loader import load_hand_model, load_hand_model_data
from hand_recon_core.hand_model.mano_pickle import UnsafePickleError, load_mano_pickle
from hand_recon_core.hand_model.model_data import HandModelData

__all__ = [
    "JOINT_NAMES",
    "PARENTS",
    "HandLayer",
    "HandModelData",
    "HandOutput",
    "UnsafePickleError",
    "convert_joints",
    "load_hand_model",
    "load_hand_model_data",
    "load_mano_pickle",
]
