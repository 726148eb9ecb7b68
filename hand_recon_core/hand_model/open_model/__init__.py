"""The open hand model: a licence-clean, MANO-structured hand generated from documented anatomical facts.

Pipeline (all deterministic numpy; ``generate.generate_open_model`` runs it, ``hand-recon hand-model generate``
writes the asset ``hand_recon_core/assets/open_hand_v1.npz``):

    anatomy   skeleton (16 MANO joints + 5 tips), segment sizes, anatomical frames, joint limits (sources cited)
    sdf       implicit surface: palm generalised cylinder + eminences + knuckles, tapered capsules per segment
    cage      quad control cage (palm tube, extruded digits), Catmull-Clark subdivision
    mesh      subdivided cage relaxed on and projected onto the implicit surface -> closed triangle mesh
    rigging   skinning weights, joint regressor, shape basis (10), knuckle-bulge pose correctives
    generate  assembles everything (+ pose PCA from the plausible-pose sampler) into a HandModelData

Frame: metres, wrist joint at the origin, fingers along -x, palm facing -y, right thumb towards +z (MANO's axes).
The asset stores the right hand; the left hand is its mirror image (x -> -x, faces reversed).
"""
