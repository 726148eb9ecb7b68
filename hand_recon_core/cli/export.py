"""``hand-recon export``: export a checkpoint's network to ONNX (with a parity check) or build a TensorRT plan.

Usage::

    hand-recon export --checkpoint CKPT --format onnx --out model.onnx [--opset 17] [--tolerance 1e-4]
    hand-recon export --checkpoint CKPT --format tensorrt --out model.plan [--precision fp16] [--max-batch 4]
    hand-recon export --checkpoint CKPT --format package --out detector.pt [--precision fp16]
    hand-recon export --checkpoint CKPT --format backbone --out backbone.pth

Package: an inference-only checkpoint (config + weights, no optimizer/RNG state; float16 weights with
``--precision fp16``, the default), as shipped under ``hand_recon_core/assets/``; it loads wherever a training
checkpoint does (``Pipeline.from_checkpoint``, ``hand-recon eval/infer``).

Backbone: the checkpoint's ResNet alone as a torchvision-format state dict (float32), to initialise another
method's backbone (``backbone: {pretrained: backbone.pth}`` in a config) the way ImageNet weights would.

ONNX: the method's own export function writes the network (no decoding, see
:mod:`hand_recon_core.inference.adapters`); the graph is then run with ONNX Runtime on seeded random images and
compared with PyTorch: the largest absolute difference per output is printed and the command fails (exit 1)
above ``--tolerance``.

TensorRT: the ONNX export (written next to ``--out`` as ``.onnx``) is built into a serialized engine with the
TensorRT Python API; the cache key fields (model hash, TensorRT version, compute capability, precision, shape
profile) are printed. This is the offline build step, so that a node's first launch does not wait minutes for
it: pass the same ``--cache-dir`` to the node (the pipeline then finds the plan under its key). Without the
``tensorrt`` package or CUDA the command says so and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def add_parser(subparsers, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint (.pt)")
    p.add_argument("--format", required=True, choices=("onnx", "tensorrt", "package", "backbone"))
    p.add_argument("--out", type=Path, default=None,
                   help="output file (.onnx / .plan); tensorrt without --out: the pipeline's cache under --cache-dir")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--tolerance", type=float, default=1e-4, help="ONNX parity tolerance (max abs difference)")
    p.add_argument("--precision", default="fp16", choices=("fp32", "fp16"),
                   help="TensorRT precision; package: weight storage")
    p.add_argument("--max-batch", type=int, default=4,
                   help="TensorRT: largest batch of the shape profile of a refiner's dynamic-batch graph (pairs per "
                        "call; the pipeline's default is 4); detectors always use batch 1")
    p.add_argument("--cache-dir", type=Path, default=None, help="TensorRT: pipeline cache folder to build into")
    p.add_argument("--device", default="cpu", help="device for the parity check (cpu, cuda); tensorrt uses cuda")
    p.add_argument("--reproduce", default=None, metavar="COMMAND",
                   help="package: the command that reproduces the checkpoint, stored in the package")
    p.add_argument("--eval-json", type=Path, default=None, metavar="FILE",
                   help="package: an evaluation metrics.json of the checkpoint, stored (as text) in the package")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hand_recon_core.inference.adapters import NoAdapterError, get_adapter
    from hand_recon_core.inference.backends import (
        BackendUnavailableError,
        OnnxRuntimeBackend,
        TensorRTBackend,
        export_module_parity,
        tensorrt_unavailable_reason,
    )
    from hand_recon_core.inference.loading import load_model
    from hand_recon_core.training.checkpoint import CheckpointError, CheckpointMismatchError

    def fail(message: str) -> int:
        print(f"hand-recon export: error: {message}", file=sys.stderr)
        return 2

    if args.format == "backbone":
        from hand_recon_core.training.checkpoint import extract_backbone

        if args.out is None:
            return fail("--format backbone needs --out")
        try:
            print(json.dumps(extract_backbone(args.checkpoint, args.out), indent=2))
        except (CheckpointError, CheckpointMismatchError, FileNotFoundError) as exc:
            return fail(str(exc))
        return 0
    if args.format == "package":
        from hand_recon_core.training.checkpoint import pack_checkpoint

        if args.out is None:
            return fail("--format package needs --out")
        try:
            extra = {"packed_from": str(args.checkpoint)}
            if args.reproduce:
                extra["reproduce"] = args.reproduce
            if args.eval_json is not None:
                extra["eval_json"] = args.eval_json.read_text()
            out = pack_checkpoint(args.checkpoint, args.out, fp16=args.precision == "fp16", extra=extra)
            load_model(out, "cpu")  # it must load into the network it came from
        except (CheckpointError, CheckpointMismatchError, FileNotFoundError) as exc:
            return fail(str(exc))
        print(json.dumps({"package": str(out), "precision": args.precision,
                          "size_mb": round(out.stat().st_size / 1e6, 2)}, indent=2))
        return 0
    device = "cuda" if args.format == "tensorrt" else args.device
    if args.format == "tensorrt":
        reason = tensorrt_unavailable_reason("cuda")
        if reason is not None:
            return fail(f"cannot build a TensorRT engine here: {reason}")
    if args.format == "onnx" and args.out is None:
        return fail("--format onnx needs --out")
    try:
        loaded = load_model(args.checkpoint, device)
        adapter = get_adapter(loaded)
    except (CheckpointError, CheckpointMismatchError, FileNotFoundError, NoAdapterError, RuntimeError) as exc:
        return fail(str(exc))

    if args.format == "onnx":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        names = adapter.export_onnx(out, opset=args.opset)
        try:
            backend = OnnxRuntimeBackend(adapter, out)
        except BackendUnavailableError as exc:
            print(f"written {out} (outputs {names}); parity not checked: {exc}", file=sys.stderr)
            return 0
        diffs = export_module_parity(adapter, backend, batch=1)
        ok = all(d <= args.tolerance for d in diffs.values())
        print(json.dumps({"onnx": str(out), "method": loaded.method_name, "opset": args.opset,
                          "input": [adapter.input_name, list(adapter.input_shape(1))], "outputs": names,
                          "max_abs_diff_vs_torch": diffs, "tolerance": args.tolerance,
                          "parity": "PASS" if ok else "FAIL"}, indent=2))
        return 0 if ok else 1

    # tensorrt
    from hand_recon_core.inference.backends import build_tensorrt_plan, ensure_onnx

    try:
        if args.out is None:  # build into the pipeline's cache (what Pipeline(backend="tensorrt") will look up)
            onnx_path = ensure_onnx(adapter, args.cache_dir, args.opset)
            batch = 1 if adapter.role == "detector" else args.max_batch  # as the pipeline does
            backend = TensorRTBackend(adapter, onnx_path, args.cache_dir, precision=args.precision, max_batch=batch)
            print(json.dumps({"plan": str(backend.plan_path), "key": backend.key, "onnx": str(onnx_path)}, indent=2))
            return 0
        out = Path(args.out)
        onnx_path = out.with_suffix(".onnx")
        adapter.export_onnx(onnx_path, opset=args.opset)
        batch_max = adapter.fixed_batch or (1 if adapter.role == "detector" else max(1, args.max_batch))
        profile = {adapter.input_name: (adapter.input_shape(adapter.fixed_batch or 1),
                                        adapter.input_shape(adapter.fixed_batch or 1), adapter.input_shape(batch_max))}
        build_tensorrt_plan(onnx_path, out, args.precision, profile)
    except (BackendUnavailableError, RuntimeError) as exc:
        return fail(str(exc))
    import tensorrt as trt
    import torch

    print(json.dumps({"plan": str(out), "onnx": str(onnx_path), "model_hash": loaded.hash,
                      "tensorrt": trt.__version__, "compute_capability": list(torch.cuda.get_device_capability()),
                      "precision": args.precision, "profile": {k: [list(s) for s in v] for k, v in profile.items()}},
                     indent=2))
    return 0


if __name__ == "__main__":
    from hand_recon_core.cli.main import main

    sys.exit(main(["export", *sys.argv[1:]]))
