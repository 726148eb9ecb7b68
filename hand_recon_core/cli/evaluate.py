"""``hand-recon eval``: evaluate a training checkpoint on a dataset.

Usage::

    hand-recon eval --checkpoint CKPT --data SPEC [--out DIR] [--vis N] [--max-samples N]

``SPEC`` is ``name[:key=value,...]`` (e.g. ``freihand:root=/data/FreiHAND,split=evaluation`` or
``synthetic-two-hand:count=200``) or a YAML file ``{name: ..., kwargs: {...}}``. Prints the metrics as JSON
and writes ``metrics.json`` (every MPJPE/MPVPE number next to its alignment convention), ``per_sample.csv``
and, with ``--vis N``, ``vis/00000.png ...`` (input | predicted mesh overlay | side view) into ``--out``
(default: ``eval/<data name>`` next to the checkpoint's ``checkpoints/`` folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def add_parser(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint (.pt)")
    parser.add_argument("--data", required=True, help="dataset spec: name[:key=value,...] or a YAML file")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--vis", type=int, default=0, metavar="N", help="render the first N images")
    parser.add_argument("--max-samples", type=int, default=None, metavar="N", help="evaluate the first N samples")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0, help="data-loader workers")
    parser.add_argument("--hand-model", default=None, help="expected hand model (error if the checkpoint differs)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--refiner", type=Path, default=None,
                        help="two-hand refiner checkpoint: evaluate detector + refiner through the inference "
                             "Pipeline (image by image, as the node runs it)")
    parser.add_argument("--pipeline", action="store_true",
                        help="evaluate through the inference Pipeline even without --refiner (the detector-alone "
                             "reference for a --refiner run)")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="Pipeline evaluation: detection score threshold (default: the detector's)")
    parser.add_argument("--max-hands", type=int, default=None, help="Pipeline evaluation: most hands per image")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change the checkpoint's config before building the method (repeatable), e.g. "
                             "--set method.kwargs.predict_stage=0 evaluates DIR's initial estimate")
    parser.add_argument("--baseline", choices=("mean-pose",), default=None,
                        help="also score a trivial baseline on the same detections (mean root-relative hand of "
                             "the evaluated ground truth at each predicted wrist); written to OUT/baseline_<name>")
    parser.add_argument("--no-penetration", dest="penetration_images", action="store_const", const=0,
                        help="skip the interpenetration volume of two-hand images (voxelised; seconds per image on a "
                             "CPU)")
    parser.add_argument("--min-affinity", type=float, default=0.1, metavar="A",
                        help="matching threshold of a prediction to a ground-truth hand (box IoU or centre "
                             "affinity, default 0.1); 0 matches every prediction that the assignment pairs, e.g. "
                             "to score every hand of an evaluation at the ground-truth centres")
    parser.add_argument("--penetration-images", type=int, default=None, metavar="N",
                        help="compute the interpenetration volume on the first N two-hand images only")
    parser.set_defaults(func=run)


def _default_out(checkpoint: Path, data: str) -> Path:
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    name = Path(data).stem if data.endswith((".yaml", ".yml")) else data.split(":", 1)[0]
    return run_dir / "eval" / f"{name}_{checkpoint.stem}"


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hand_recon_core.models.registry import MethodKwargsError, UnknownMethodError
    from hand_recon_core.training.checkpoint import CheckpointError, CheckpointMismatchError
    from hand_recon_core.training.config import ConfigError
    from hand_recon_core.training.evaluation import evaluate_checkpoint, evaluate_pipeline

    out = args.out if args.out is not None else _default_out(args.checkpoint, args.data)
    try:
        if args.refiner is not None or args.pipeline:
            result = evaluate_pipeline(args.checkpoint, args.data, out, refiner=args.refiner,
                                       max_samples=args.max_samples, device=args.device, progress=args.progress,
                                       baseline=args.baseline, hand_model=args.hand_model,
                                       min_affinity=args.min_affinity,
                                       penetration_images=args.penetration_images,
                                       **{k: v for k, v in (("score_threshold", args.score_threshold),
                                                            ("max_hands", args.max_hands)) if v is not None})
        else:
            result = evaluate_checkpoint(args.checkpoint, args.data, out, vis=args.vis,
                                         max_samples=args.max_samples, device=args.device,
                                         batch_size=args.batch_size, num_workers=args.workers,
                                         hand_model=args.hand_model, progress=args.progress, baseline=args.baseline,
                                         overrides=args.overrides, min_affinity=args.min_affinity,
                                         penetration_images=args.penetration_images)
    except (CheckpointError, CheckpointMismatchError, UnknownMethodError, MethodKwargsError, ConfigError,
            FileNotFoundError, KeyError, ValueError, ModuleNotFoundError) as exc:
        logging.getLogger(__name__).debug("traceback", exc_info=True)
        print(f"hand-recon eval: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    print(f"written: {out / 'metrics.json'}, {out / 'per_sample.csv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from hand_recon_core.cli.main import main

    sys.exit(main(["eval", *sys.argv[1:]]))
