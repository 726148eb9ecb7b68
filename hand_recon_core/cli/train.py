"""``hand-recon train``: train a method from a YAML experiment config.

Usage::

    hand-recon train --config config/<experiment>.yaml [key=value ...] [--resume auto|PATH] [--out DIR]
    torchrun --nproc_per_node=2 -m hand_recon_core.cli.main train --config ...     # DDP, one process per device

Overrides use dotted keys typed by the config schema (``optim.lr=1e-4 data.train.kwargs.count=64``; see
:mod:`hand_recon_core.training.config`). ``--resume auto`` continues from the newest checkpoint of the output
directory (or starts fresh when there is none); ``--resume PATH`` from that file, in which case ``--config``
may be left out (the checkpoint's config is used, with the overrides applied).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def add_parser(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "-c", default=None, help="experiment YAML (config/<experiment>.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (dotted keys)")
    parser.add_argument("--resume", default=None, metavar="auto|PATH",
                        help="continue from the newest checkpoint of the output directory, or from PATH")
    parser.add_argument("--out", default=None, metavar="DIR", help="output directory (overrides output_dir)")
    parser.add_argument("--log-level", default="INFO",
                        help="logging level on rank 0 (other ranks: WARNING); DEBUG also prints tracebacks of errors")
    parser.set_defaults(func=run)


def _configure_logging(level: str) -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO) if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s")


def run(args: argparse.Namespace) -> int:
    _configure_logging(args.log_level)
    from hand_recon_core.models.registry import MethodKwargsError, UnknownMethodError
    from hand_recon_core.training.checkpoint import CheckpointError, CheckpointMismatchError, load_checkpoint
    from hand_recon_core.training.config import ConfigError, load_config
    from hand_recon_core.training.engine import Trainer

    overrides = list(args.overrides)
    if args.out is not None:
        overrides.append(f"output_dir={args.out}")
    try:
        base = None
        if args.config is None:
            if args.resume in (None, "auto"):
                raise ConfigError("--config is required (unless --resume names a checkpoint file)")
            base = load_checkpoint(args.resume)["config"]
            if args.out is None:
                overrides.append(f"output_dir={base.get('output_dir')}")
        cfg = load_config(args.config, overrides, base=base)
        metrics = Trainer(cfg, resume=args.resume).fit()
    except (ConfigError, CheckpointError, CheckpointMismatchError, UnknownMethodError, FileNotFoundError,
            FileExistsError, MethodKwargsError, KeyError, ModuleNotFoundError) as exc:
        logging.getLogger(__name__).debug("traceback", exc_info=True)
        print(f"hand-recon train: error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: (v if v == v else None) for k, v in metrics.items()}, indent=2, sort_keys=True))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun: everything is saved and the process group is gone; leave without interpreter
        # finalisation, during which leftover C++ communication threads can std::terminate the rank.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    from hand_recon_core.cli.main import main

    sys.exit(main(["train", *sys.argv[1:]]))
