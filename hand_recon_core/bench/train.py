"""``hand-recon bench train``: training throughput (samples/s) of a backbone + small regression head.

The model is :func:`hand_recon_core.models.backbones.build_backbone` (random initialisation) followed by
global average pooling of ``c5`` and a linear layer regressing 21 x 3 joint coordinates: the cost profile of
the methods' encoders, whose heads are small next to a ResNet-50. One timed iteration is a full training step
on synthetic random tensors (no data loading): forward, MSE loss, backward and an Adam step. The first
``--warmup`` steps are not timed. On CUDA the clock waits for the device (``torch.cuda.synchronize``).
``cpu_s_per_sample`` (process CPU time, all threads) complements the wall-clock figure on a shared machine,
where other processes inflate wall time but not this process's CPU time.
"""

from __future__ import annotations

import argparse
import time

from hand_recon_core.bench.timing import summarize_ms, time_callable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="resnet50", help="resnet18 | resnet34 | resnet50")
    parser.add_argument("--size", type=int, default=256, help="square input side (pixels)")
    parser.add_argument("--batch", type=int, default=16, help="images per step")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="autocast precision (fp16: CUDA only)")
    parser.add_argument("--channels-last", action="store_true", help="use the channels_last memory format")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    import torch
    from torch import nn

    from hand_recon_core.models.backbones import build_backbone
    from hand_recon_core.training.engine import autocast_context, resolve_device

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)

    class Regressor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = build_backbone(args.backbone)
            self.head = nn.Linear(self.backbone.out_channels["c5"], 21 * 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            c5 = self.backbone.forward_features(x)["c5"]
            return self.head(c5.mean((2, 3))).view(-1, 21, 3)

    model = Regressor().to(device).train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=memory_format)
    y = torch.randn(args.batch, 21, 3, device=device) * 0.05

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast_context(args.precision, device):
            loss = nn.functional.mse_loss(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    for _ in range(args.warmup):
        step()
    if sync is not None:
        sync()
    cpu0 = time.process_time()
    stats = summarize_ms(time_callable(step, repeats=args.steps, warmup=0, sync=sync))
    cpu_s = time.process_time() - cpu0
    params = sum(p.numel() for p in model.parameters())
    result = {
        "backbone": args.backbone, "size": args.size, "batch": args.batch, "precision": args.precision,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "channels_last": bool(args.channels_last),
        "params_millions": round(params / 1e6, 2),
        "samples_per_s": round(args.batch * 1e3 / stats["mean_ms"], 2),
        # CPU seconds of this process per sample (all threads): comparable across loads on a shared machine
        "cpu_s_per_sample": round(cpu_s / (args.batch * args.steps), 3),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()},
    }
    return result
