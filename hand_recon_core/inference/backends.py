"""Where the networks run: eager PyTorch, ``torch.compile``, ONNX Runtime or TensorRT.

A backend wraps only a method's *network* (:mod:`.adapters`): ``backend(x) -> tuple of tensors`` on the
pipeline's device. Decoding, hand layers and the mapping to the camera frame stay in the method's torch/numpy
code, identical for every backend. :class:`ModelRunner` puts a loaded method and a backend together.

=================  ==========================================================================================
backend            status
=================  ==========================================================================================
``torch``          eager ``model(batch)``, the evaluation path (:func:`~hand_recon_core.training.evaluation
                   .forward_batch`); any registered method, CPU or CUDA (``precision="fp16"``: CUDA autocast)
``torch_compile``  ``torch.compile`` of the network, compiled and run once at construction (a failure, e.g. no
                   C++ compiler for inductor, is reported then, not at the first frame)
``onnxruntime``    the method's ONNX export, written once into the cache (:func:`onnx_cache_key`: model hash,
                   opset, input shape), run by ONNX Runtime (CPU, or CUDA with ``onnxruntime-gpu``); outputs
                   match torch within 1e-4 (tested)
``tensorrt``       an engine built from that ONNX export with the TensorRT Python API, its plan cached under
                   :func:`tensorrt_cache_key` (model hash, TensorRT version, GPU compute capability, precision,
                   input shape profile) and rebuilt only when the key changes; needs ``tensorrt`` and CUDA
=================  ==========================================================================================

An unavailable backend raises :class:`BackendUnavailableError` naming what is missing. With
``allow_fallback=True`` the runner falls back to eager PyTorch instead and logs one WARNING saying so (never a
silent fallback).

Cache layout (``cache_dir``, default :func:`default_cache_dir`)::

    onnx/<method>-<onnx key[:20]>.onnx
    tensorrt/<method>-<tensorrt key[:20]>.plan   (+ .json: the key's fields, for humans)

Files are written to a temporary name and renamed, so a killed build never leaves a truncated cache entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hand_recon_core.inference.adapters import NetworkAdapter, NoAdapterError, get_adapter
from hand_recon_core.inference.config import BackendOptions
from hand_recon_core.inference.loading import LoadedModel

__all__ = [
    "BackendUnavailableError",
    "ModelRunner",
    "NetworkBackend",
    "OnnxRuntimeBackend",
    "TensorRTBackend",
    "TorchBackend",
    "TorchCompileBackend",
    "build_tensorrt_plan",
    "create_backend",
    "default_cache_dir",
    "ensure_onnx",
    "export_module_parity",
    "onnx_cache_key",
    "tensorrt_cache_key",
    "tensorrt_unavailable_reason",
]

logger = logging.getLogger(__name__)

#: Environment variable overriding the cache folder.
CACHE_ENV = "HAND_RECON_CACHE"


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (missing package, no CUDA, failed compilation ...)."""


def default_cache_dir() -> Path:
    """``$HAND_RECON_CACHE``, else ``$XDG_CACHE_HOME/hand_recon``, else ``~/.cache/hand_recon``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hand_recon"


def _digest(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def onnx_cache_key(model_hash: str, opset: int, input_shape: Sequence[int]) -> str:
    """Key (SHA-256 hex) of an ONNX export: model hash (:func:`~.loading.model_hash`), opset, input shape."""
    return _digest({"model": str(model_hash), "opset": int(opset), "input_shape": [int(s) for s in input_shape]})


def tensorrt_cache_key(model_hash: str, tensorrt_version: str, compute_capability: Sequence[int], precision: str,
                       shape_profile: Mapping[str, Sequence[Sequence[int]]]) -> str:
    """Key (SHA-256 hex) of a TensorRT plan; a plan is rebuilt exactly when this changes.

    Args:
        model_hash: :func:`~.loading.model_hash` of the network (weights, config, code).
        tensorrt_version: ``tensorrt.__version__`` (plans are not portable across versions).
        compute_capability: ``(major, minor)`` of the GPU (plans are not portable across architectures).
        precision: ``"fp32"`` or ``"fp16"``.
        shape_profile: input name -> ``(min, opt, max)`` shapes of the optimisation profile.
    """
    profile = {str(k): [[int(d) for d in s] for s in v] for k, v in shape_profile.items()}
    return _digest({"model": str(model_hash), "tensorrt": str(tensorrt_version),
                    "compute_capability": [int(c) for c in compute_capability], "precision": str(precision),
                    "profile": profile})


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_onnx(adapter: NetworkAdapter, cache_dir: str | Path | None = None, opset: int = 17,
                batch: int = 1) -> Path:
    """The cached ONNX export of ``adapter``'s network, exporting it on a cache miss.

    Args:
        adapter: the method's network adapter.
        cache_dir: cache root (None: :func:`default_cache_dir`).
        opset: ONNX opset.
        batch: batch size of the example input (part of the key; exports with a dynamic batch axis serve any).

    Returns:
        Path of the ``.onnx`` file.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    shape = adapter.input_shape(adapter.fixed_batch or batch)
    key = onnx_cache_key(adapter.loaded.hash, opset, shape)
    path = root / "onnx" / f"{adapter.loaded.method_name}-{key[:20]}.onnx"
    if path.is_file():
        logger.info("ONNX cache hit: %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.onnx")
    t0 = time.perf_counter()
    try:
        adapter.export_onnx(tmp, opset=opset)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("exported %s to ONNX (opset %d) in %.1f s: %s", adapter.loaded.method_name, opset,
                time.perf_counter() - t0, path)
    return path


# ------------------------------------------------------------------------------------------------------------
# network backends
# ------------------------------------------------------------------------------------------------------------


class NetworkBackend:
    """``backend(x (B, 3, S, S) float32) -> tuple of output tensors`` on ``device`` (adapter output order)."""

    name = "base"

    def __init__(self, adapter: NetworkAdapter) -> None:
        self.adapter = adapter
        self.device = adapter.device

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


class TorchBackend(NetworkBackend):
    """The export module run eagerly (the reference for the other backends' parity)."""

    name = "torch"

    def __init__(self, adapter: NetworkAdapter) -> None:
        super().__init__(adapter)
        self.module = adapter.export_module()

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.module(x.to(self.device).float()))


class TorchCompileBackend(NetworkBackend):
    """``torch.compile`` of the export module, compiled at construction with an example input.

    Args:
        adapter: the method's adapter.
        mode: ``torch.compile`` mode (None, ``"reduce-overhead"``, ``"max-autotune"``).
        batch: batch of the warm-up input.

    Raises:
        BackendUnavailableError: compilation failed (the error names the cause).
    """

    name = "torch_compile"

    def __init__(self, adapter: NetworkAdapter, mode: str | None = None, batch: int = 1) -> None:
        super().__init__(adapter)
        module = adapter.export_module()
        try:
            self.module = torch.compile(module, mode=mode)
            with torch.inference_mode():
                self.module(torch.zeros(adapter.input_shape(adapter.fixed_batch or batch), device=self.device))
        except Exception as exc:  # inductor raises many types (missing compiler, unsupported op ...)
            raise BackendUnavailableError(f"torch.compile of {adapter.loaded.method_name!r} failed: "
                                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                                          ) from exc

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.module(x.to(self.device).float()))


def _split_batches(x: torch.Tensor, size: int | None) -> list[torch.Tensor]:
    if size is None or x.shape[0] <= size:
        return [x]
    return list(torch.split(x, size, dim=0))


class OnnxRuntimeBackend(NetworkBackend):
    """The cached ONNX export run by ONNX Runtime.

    Args:
        adapter: the method's adapter.
        onnx_path: the exported graph (:func:`ensure_onnx`).
        threads: intra-op threads (None: ``torch.get_num_threads()``, the same budget as the torch backend).

    Raises:
        BackendUnavailableError: ``onnxruntime`` is not installed, or CUDA was asked for without its provider.
    """

    name = "onnxruntime"

    def __init__(self, adapter: NetworkAdapter, onnx_path: str | Path, threads: int | None = None) -> None:
        super().__init__(adapter)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("backend 'onnxruntime' needs the onnxruntime package "
                                          "(pip install 'hand_recon[export]')") from exc
        available = ort.get_available_providers()
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise BackendUnavailableError(f"backend 'onnxruntime' on {self.device}: the CUDA execution provider "
                                              f"is missing (available: {available}; install onnxruntime-gpu)")
            providers: list[Any] = [("CUDAExecutionProvider", {"device_id": self.device.index or 0}),
                                    "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        self.onnx_path = Path(onnx_path)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        if list(adapter.output_names) != names[: len(adapter.output_names)]:
            raise RuntimeError(f"{onnx_path}: outputs {names} do not match the adapter's {adapter.output_names}")

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        chunks = []
        for part in _split_batches(x, self.adapter.fixed_batch):
            arr = np.ascontiguousarray(part.detach().float().cpu().numpy())
            chunks.append(self.session.run(list(self.adapter.output_names), {self.input_name: arr}))
        outs = [np.concatenate([c[i] for c in chunks], axis=0) if len(chunks) > 1 else chunks[0][i]
                for i in range(len(self.adapter.output_names))]
        return tuple(torch.from_numpy(np.asarray(o)).to(self.device) for o in outs)


def tensorrt_unavailable_reason(device: torch.device | str | None = None) -> str | None:
    """Why TensorRT cannot run here (None when it can): the package or CUDA is missing."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "the tensorrt Python package is not installed (pip install 'hand_recon[tensorrt]')"
    if not torch.cuda.is_available():
        return f"CUDA is not available to torch {torch.__version__} (TensorRT runs on NVIDIA GPUs only)"
    if device is not None and torch.device(device).type != "cuda":
        return f"TensorRT needs a CUDA device, the pipeline runs on {device} (use device='cuda')"
    return None


class TensorRTBackend(NetworkBackend):
    """A TensorRT engine built from the ONNX export, its serialized plan cached on disk.

    The plan's file name is derived from :func:`tensorrt_cache_key`; a missing file is built (the build takes
    from seconds to minutes, logged), an existing one is deserialized. Inputs and outputs are torch CUDA
    tensors bound by address (TensorRT 10 name-based I/O API), executed on torch's current CUDA stream.

    Args:
        adapter: the method's adapter.
        onnx_path: the exported graph (:func:`ensure_onnx`).
        cache_dir: cache root.
        precision: ``"fp32"`` or ``"fp16"`` (``BuilderFlag.FP16``: TensorRT may choose half-precision kernels).
        max_batch: largest batch of the shape profile for graphs with a dynamic batch axis.
        workspace_gb: builder workspace memory pool limit, GiB.

    Raises:
        BackendUnavailableError: no ``tensorrt`` package or no CUDA device.
        RuntimeError: the ONNX graph cannot be parsed or the engine not built (TensorRT's messages included).
    """

    name = "tensorrt"

    def __init__(self, adapter: NetworkAdapter, onnx_path: str | Path, cache_dir: str | Path | None = None,
                 precision: str = "fp16", max_batch: int = 1, workspace_gb: float = 2.0) -> None:
        super().__init__(adapter)
        reason = tensorrt_unavailable_reason(self.device)
        if reason is not None:
            raise BackendUnavailableError(f"backend 'tensorrt' is unavailable: {reason}")
        import tensorrt as trt

        self._trt = trt
        self.trt_logger = trt.Logger(trt.Logger.WARNING)
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        batch_max = adapter.fixed_batch or max(1, int(max_batch))
        self.max_batch = batch_max
        self.profile = {adapter.input_name: (adapter.input_shape(adapter.fixed_batch or 1),
                                             adapter.input_shape(adapter.fixed_batch or 1),
                                             adapter.input_shape(batch_max))}
        cc = torch.cuda.get_device_capability(self.device)
        self.key = tensorrt_cache_key(adapter.loaded.hash, trt.__version__, cc, precision, self.profile)
        self.plan_path = root / "tensorrt" / f"{adapter.loaded.method_name}-{self.key[:20]}.plan"
        if not self.plan_path.is_file():
            build_tensorrt_plan(onnx_path, self.plan_path, precision, self.profile, workspace_gb, self.trt_logger)
            meta = {"model_hash": adapter.loaded.hash, "tensorrt": trt.__version__, "compute_capability": list(cc),
                    "precision": precision, "profile": {k: [list(s) for s in v] for k, v in self.profile.items()},
                    "onnx": str(onnx_path), "key": self.key}
            _atomic_write(self.plan_path.with_suffix(".json"), json.dumps(meta, indent=2).encode())
        else:
            logger.info("TensorRT plan cache hit: %s", self.plan_path)
        self.runtime = trt.Runtime(self.trt_logger)
        self.engine = self.runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {self.plan_path}; delete it to rebuild")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.to(device=self.device, dtype=torch.float32).contiguous()
        ctx = self.context
        ctx.set_input_shape(self.input_name, tuple(x.shape))
        ctx.set_tensor_address(self.input_name, x.data_ptr())
        outs = {}
        for name in self.adapter.output_names:
            t = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=self._dtypes[name], device=self.device)
            ctx.set_tensor_address(name, t.data_ptr())
            outs[name] = t
        stream = torch.cuda.current_stream(self.device)
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return tuple(outs[n].float() for n in self.adapter.output_names)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        parts = [self._run(p) for p in _split_batches(x, self.max_batch)]
        if len(parts) == 1:
            return parts[0]
        return tuple(torch.cat([p[i] for p in parts]) for i in range(len(parts[0])))


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
             trt.DataType.BOOL: torch.bool}
    if hasattr(trt.DataType, "INT64"):
        table[trt.DataType.INT64] = torch.int64
    if dtype not in table:
        raise RuntimeError(f"unsupported TensorRT I/O dtype {dtype}")
    return table[dtype]


def build_tensorrt_plan(onnx_path: str | Path, plan_path: str | Path, precision: str,
                        profile: Mapping[str, Sequence[Sequence[int]]], workspace_gb: float = 2.0,
                        trt_logger: Any = None) -> Path:
    """Build a serialized TensorRT engine (plan) from an ONNX file with the TensorRT Python API.

    Args:
        onnx_path: the ONNX graph.
        plan_path: output ``.plan`` file (written atomically).
        precision: ``"fp32"`` or ``"fp16"``.
        profile: input name -> ``(min, opt, max)`` shapes; used when the graph has dynamic input dimensions.
        workspace_gb: workspace memory pool limit, GiB.
        trt_logger: a ``tensorrt.Logger`` (default: warnings).

    Raises:
        BackendUnavailableError: TensorRT / CUDA missing.
        RuntimeError: parsing or building failed (TensorRT's parser errors included).
    """
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(f"cannot build a TensorRT engine: {reason}")
    import tensorrt as trt

    trt_logger = trt_logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    flags = 0
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:  # explicit batch is the only mode (and the default) from TensorRT 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise RuntimeError(f"TensorRT {trt.__version__} has no BuilderFlag.FP16; use precision='fp32'")
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision != "fp32":
        raise ValueError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if any(-1 in tuple(t.shape) for t in inputs):
        opt_profile = builder.create_optimization_profile()
        for t in inputs:
            if t.name not in profile:
                raise RuntimeError(f"no shape profile for the dynamic input {t.name!r} of {onnx_path}")
            mn, opt, mx = (tuple(int(d) for d in s) for s in profile[t.name])
            opt_profile.set_shape(t.name, mn, opt, mx)
        config.add_optimization_profile(opt_profile)
    t0 = time.perf_counter()
    logger.warning("building a TensorRT engine from %s (%s); this can take minutes and happens once per cache key",
                   onnx_path, precision)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    plan_path = Path(plan_path)
    _atomic_write(plan_path, bytes(serialized))
    logger.info("TensorRT engine built in %.1f s: %s", time.perf_counter() - t0, plan_path)
    return plan_path


def create_backend(adapter: NetworkAdapter, options: BackendOptions, batch: int = 1) -> NetworkBackend:
    """The network backend ``options.name`` for ``adapter`` (not ``"torch"``'s full-model path: that is
    :class:`ModelRunner` without a network backend).

    Args:
        adapter: the method's adapter.
        options: backend options.
        batch: typical batch (warm-up of ``torch_compile``; TensorRT's profile uses ``options.max_refiner_batch``
            for dynamic-batch graphs of refiners, set by the caller through ``batch``).

    Raises:
        BackendUnavailableError: see the backends.
    """
    name = options.name
    if name == "torch":
        return TorchBackend(adapter)
    if name == "torch_compile":
        return TorchCompileBackend(adapter, mode=options.extra.get("compile_mode"), batch=batch)
    if name == "tensorrt":  # check before exporting anything
        reason = tensorrt_unavailable_reason(adapter.device)
        if reason is not None:
            raise BackendUnavailableError(f"backend 'tensorrt' is unavailable: {reason}")
    if name in ("onnxruntime", "tensorrt"):
        try:
            import onnx  # noqa: F401  (torch.onnx.export needs it)
        except ImportError as exc:
            raise BackendUnavailableError(f"backend {name!r} needs the onnx package to export the network "
                                          "(pip install 'hand_recon[export]')") from exc
        path = ensure_onnx(adapter, options.cache_dir, options.opset)
        if name == "onnxruntime":
            return OnnxRuntimeBackend(adapter, path, threads=options.extra.get("ort_threads"))
        return TensorRTBackend(adapter, path, options.cache_dir, precision=options.precision, max_batch=batch,
                               workspace_gb=float(options.extra.get("trt_workspace_gb", 2.0)))
    raise ValueError(f"unknown backend {name!r}")


# ------------------------------------------------------------------------------------------------------------
# runner
# ------------------------------------------------------------------------------------------------------------


class ModelRunner:
    """A loaded method on a backend: ``forward(batch) -> (model_out, batch)`` and ``predict(...)``.

    With the ``torch`` backend the model's own ``forward(batch)`` runs (the evaluation path, any method);
    otherwise the adapter's network input goes through the network backend and the adapter rebuilds
    ``model_out`` for the method's ``predict``.

    Args:
        loaded: the method and model.
        options: backend options.
        batch: typical batch (see :func:`create_backend`).

    Attributes:
        backend_name: the backend actually used (``"torch"`` after a fallback).
        fell_back: True when ``options.name`` was unavailable and ``allow_fallback`` replaced it.
    """

    def __init__(self, loaded: LoadedModel, options: BackendOptions, batch: int = 1) -> None:
        self.loaded = loaded
        self.options = options
        self.network: NetworkBackend | None = None
        self.adapter: NetworkAdapter | None = None
        self.fell_back = False
        self.precision = "fp32"
        if options.precision == "fp16" and options.name in ("torch", "torch_compile"):
            if loaded.device.type != "cuda":
                raise ValueError("precision='fp16' with a torch backend needs device='cuda' (autocast)")
            self.precision = "fp16"
        if options.name != "torch":
            try:
                self.adapter = get_adapter(loaded)
                self.network = create_backend(self.adapter, options, batch=batch)
            except (BackendUnavailableError, NoAdapterError) as exc:
                if not options.allow_fallback:
                    if isinstance(exc, NoAdapterError):
                        raise BackendUnavailableError(str(exc)) from exc
                    raise
                logger.warning("backend %r unavailable for %s (%s): FALLING BACK to eager PyTorch (allow_fallback="
                               "True)", options.name, loaded.method_name, exc)
                self.network, self.adapter, self.fell_back = None, None, True
        self.backend_name = "torch" if self.network is None else self.network.name

    @torch.inference_mode()
    def forward(self, batch: Mapping[str, Any]) -> tuple[Any, Mapping[str, Any]]:
        """Run the model (or network + adapter) on a collated batch; returns ``(model_out, batch_on_device)``."""
        from hand_recon_core.training.engine import move_to_device
        from hand_recon_core.training.evaluation import forward_batch

        dev = self.loaded.device
        if self.network is None:
            return forward_batch(self.loaded.model, batch, dev, self.precision)
        assert self.adapter is not None
        batch = move_to_device(batch, dev, non_blocking=True)
        ctx = (torch.autocast(device_type="cuda", dtype=torch.float16) if self.precision == "fp16"
               else contextlib.nullcontext())
        with ctx:
            outputs = self.network(self.adapter.network_input(batch))
        outputs = tuple(o.float() for o in outputs)
        return self.adapter.model_out(outputs, batch), batch

    @torch.inference_mode()
    def predict(self, model_out: Any, batch: Mapping[str, Any], num_images: int) -> list[dict[str, Any]]:
        """The method's ``predict`` (one dict per image), checking the count."""
        preds = self.loaded.method.predict(model_out, batch)
        if len(preds) != num_images:
            raise ValueError(f"method {self.loaded.method_name!r}: predict returned {len(preds)} predictions for "
                             f"{num_images} images")
        return preds


def export_module_parity(adapter: NetworkAdapter, backend: NetworkBackend, batch: int = 1, seed: int = 0
                         ) -> dict[str, float]:
    """Largest absolute difference per output between ``backend`` and the eager export module.

    Args:
        adapter: the method's adapter.
        backend: the backend to check.
        batch: images per call (ignored for fixed-batch exports).
        seed: seed of the random input images (:meth:`NetworkAdapter.example_input`).

    Returns:
        output name -> max |backend - torch| (in the output's own units).
    """
    x = adapter.example_input(adapter.fixed_batch or batch, seed)
    with torch.inference_mode():
        ref = [t.float().cpu() for t in adapter.export_module()(x)]
        got = [t.float().cpu() for t in backend(x)]
    return {name: float((a - b).abs().max()) if a.numel() else 0.0
            for name, a, b in zip(adapter.output_names, got, ref)}
