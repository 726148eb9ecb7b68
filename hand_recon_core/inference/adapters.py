"""Per-method glue between a batch, the exportable network and the method's ``predict``.

The non-eager backends (``torch_compile``, ``onnxruntime``, ``tensorrt``) run only a method's *network*, the
module its ONNX export function exports (tensors in, tensors out, no hand layer, no decoding). An adapter knows,
for one method, how to

* take the network input from a collated batch (:meth:`NetworkAdapter.network_input`),
* export the network with the method's own export function (:meth:`NetworkAdapter.export_onnx`),
* turn the network outputs back into the ``model_out`` structure the method's ``predict`` expects, running the
  remaining torch steps (decoding, hand layers) itself (:meth:`NetworkAdapter.model_out`).

Everything after the network therefore stays the method's own torch/numpy code whatever the backend. The eager
``torch`` backend needs no adapter: it runs ``model(batch)`` exactly as evaluation does.

=================  =====================================  ==============================================
method             network (export)                       input
=================  =====================================  ==============================================
``single_stage``   ``SingleStageExport`` (no texture)     ``image`` (B, 3, S, S) ImageNet-normalised RGB
``acr``            ``ACROnnxModule``                      ``image`` (B, 3, S, S) RGB in [0, 255]
``dir``            ``DIRExportWrapper`` (predict stage)   ``pixels`` (1, 3, S, S) RGB in [0, 1] (fixed B)
``dgcl``           ``DGCLInferenceNet``                   ``pixels`` (B, 3, S, S) RGB in [0, 1]
=================  =====================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hand_recon_core.inference.loading import LoadedModel

__all__ = ["ADAPTERS", "NetworkAdapter", "NoAdapterError", "get_adapter"]


class NoAdapterError(LookupError):
    """The method has no network adapter, so only the eager ``torch`` backend can run it."""


class NetworkAdapter:
    """Base class (see the module docstring).

    Attributes:
        role: ``"detector"`` (one image per call) or ``"refiner"`` (one call per batch of interacting pairs).
        input_name: name of the network input in the ONNX graph.
        output_names: names of the network outputs, in order.
        fixed_batch: batch size baked into the export (None: dynamic batch axis).
    """

    role: str = "detector"
    input_name: str = "image"
    output_names: tuple[str, ...] = ()
    fixed_batch: int | None = None

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.method = loaded.method
        self.model = loaded.model

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    @property
    def input_size(self) -> int:
        """Side ``S`` of the square network input, pixels."""
        raise NotImplementedError

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """``(B, 3, S, S)`` of the network input."""
        return (int(batch), 3, self.input_size, self.input_size)

    def example_input(self, batch: int = 1, seed: int = 0) -> torch.Tensor:
        """A network input made from ``batch`` seeded random RGB images (uint8 noise), on the model's device."""
        g = torch.Generator().manual_seed(int(seed))
        images = torch.randint(0, 256, (int(batch), self.input_size, self.input_size, 3), generator=g,
                               dtype=torch.uint8)
        fake = {"net_image": images, "image": images, "pixels": images.permute(0, 3, 1, 2).float() / 255.0}
        return self.network_input(fake)

    def export_module(self) -> nn.Module:
        """The exportable network: ``forward(x) -> tuple of tensors`` in :attr:`output_names` order (eval mode).

        Adapters that build their export wrapper once keep it in ``self._wrapper``.
        """
        wrapper = getattr(self, "_wrapper", None)
        if wrapper is None:
            raise NotImplementedError
        return wrapper

    def network_input(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """(B, 3, S, S) float32 network input on the model's device, from the method's collated batch."""
        raise NotImplementedError

    def model_out(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, Any]) -> Any:
        """The method's ``model_out`` from the network outputs (on the model's device)."""
        raise NotImplementedError

    def export_onnx(self, path: str | Path, opset: int = 17) -> list[str]:
        """Export :meth:`export_module` with the method's export function; returns the output names."""
        raise NotImplementedError


def _image_nchw(batch: Mapping[str, Any], key: str, device: torch.device) -> torch.Tensor:
    return batch[key].to(device).permute(0, 3, 1, 2).float()


class SingleStageAdapter(NetworkAdapter):
    """``single_stage``: dense maps from the network, peaks + hand layers (:meth:`SingleStageNet.decode`) in torch."""

    input_name = "image"

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(loaded)
        from hand_recon_core.models.single_stage import SingleStageExport

        self._wrapper = SingleStageExport(self.model, texture=False).eval()
        self.output_names = tuple(self._wrapper.output_names())

    @property
    def input_size(self) -> int:
        return int(self.model.input_size)

    def network_input(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.model.normalize(batch["net_image"].to(self.device))

    def model_out(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, Any]) -> Any:
        maps = dict(zip(self.output_names, outputs))
        det = self.model.decode(maps, batch["K_cam"].to(self.device), texture=False)
        return {"maps": maps, "detections": det}

    def export_onnx(self, path: str | Path, opset: int = 17) -> list[str]:
        return self.method.export_onnx(self.model, str(path), texture=False, opset=opset, dynamic_batch=True)


class ACRAdapter(NetworkAdapter):
    """``acr``: maps, attention pooling and parameters from the network; hand layers (``pose_hands``) in torch."""

    input_name = "image"

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(loaded)
        from hand_recon_core.models.acr import ACROnnxModule

        self._wrapper = ACROnnxModule(self.model).eval()
        self.output_names = tuple(self._wrapper.output_names)

    @property
    def input_size(self) -> int:
        return int(self.model.input_size)

    def network_input(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return _image_nchw(batch, "image", self.device)

    def model_out(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, Any]) -> Any:
        out = dict(zip(self.output_names, outputs))
        out.update(self.model.pose_hands(out["pose6d"], out["betas"]))
        return out

    def export_onnx(self, path: str | Path, opset: int = 17) -> list[str]:
        from hand_recon_core.models.acr import export_onnx

        return export_onnx(self.model, path, batch_size=1, opset=opset)


class DIRAdapter(NetworkAdapter):
    """``dir``: the predicted estimate (``predict_stage``) from the network; weak-perspective vertex projections in
    torch. The export has a fixed batch of 1 (see :func:`hand_recon_core.models.dir.export_onnx`)."""

    role = "refiner"
    input_name = "pixels"
    fixed_batch = 1

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(loaded)
        from hand_recon_core.models.dir import DIRExportWrapper

        self._wrapper = DIRExportWrapper(self.model, stage=self.method.predict_stage).eval()
        self.output_names = tuple(DIRExportWrapper.OUTPUT_NAMES)

    @property
    def input_size(self) -> int:
        return int(self.model.image_size)

    def network_input(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return _image_nchw(batch, "image", self.device) * (1.0 / 255.0)

    def model_out(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, Any]) -> Any:
        from hand_recon_core.geometry.cameras import weak_perspective_project

        est = dict(zip(self.output_names, outputs))
        est["vertices_2d"] = weak_perspective_project(est["vertices"], est["cam"])
        # predict() indexes the estimate axis with predict_stage: every entry holds the exported estimate.
        k = self.model.num_stages + 1
        return {name: t.unsqueeze(0).expand(k, *t.shape) for name, t in est.items()}

    def export_onnx(self, path: str | Path, opset: int = 17) -> list[str]:
        from hand_recon_core.models.dir import export_onnx

        export_onnx(self.model, path, stage=self.method.predict_stage, opset=opset, batch_size=1)
        return list(self.output_names)


class DGCLAdapter(NetworkAdapter):
    """``dgcl``: the inference network (no DGCLNet); crop keypoints from the weak-perspective camera in torch."""

    role = "refiner"
    input_name = "pixels"
    output_names = ("vertices", "joints", "cam", "bone_length")

    @property
    def input_size(self) -> int:
        return int(self.model.inference_module().input_size)

    def export_module(self) -> nn.Module:
        return self.model.inference_module().eval()

    def network_input(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return batch["pixels"].to(self.device).float()

    def model_out(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, Any]) -> Any:
        from hand_recon_core.geometry.cameras import normalized_to_pixels, weak_perspective_project

        out = dict(zip(self.output_names, outputs))
        out["keypoints_crop"] = normalized_to_pixels(weak_perspective_project(out["joints"], out["cam"]),
                                                     float(self.input_size))
        return out

    def export_onnx(self, path: str | Path, opset: int = 17) -> list[str]:
        from hand_recon_core.models.dgcl import export_onnx

        export_onnx(self.model, path, opset=opset)
        return list(self.output_names)


#: method name -> adapter class.
ADAPTERS: dict[str, type[NetworkAdapter]] = {
    "single_stage": SingleStageAdapter,
    "acr": ACRAdapter,
    "dir": DIRAdapter,
    "dgcl": DGCLAdapter,
}


def get_adapter(loaded: LoadedModel) -> NetworkAdapter:
    """The adapter of ``loaded``'s method.

    Raises:
        NoAdapterError: the method has none (only the eager torch backend can run it).
    """
    cls = ADAPTERS.get(loaded.method_name)
    if cls is None:
        raise NoAdapterError(f"method {loaded.method_name!r} has no network adapter (known: {sorted(ADAPTERS)}); "
                             "only backend='torch' can run it")
    return cls(loaded)
