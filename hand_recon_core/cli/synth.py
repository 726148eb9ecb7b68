"""``hand-recon synth``: generate synthetic hand scenes into shards (and contact-sheet previews).

Example::

    hand-recon synth --family interacting --count 10000 --size 256 --out data/synth_inter --workers 2 --preview

writes ``data/synth_inter/index.json`` and ``shard_*.npz`` (format: :mod:`hand_recon_core.data.synthetic.shards`;
read them back with ``ShardDataset(dir)`` or the dataset spec ``synthetic-interacting:shards=DIR``) and, with
``--preview``, ``data/synth_inter/synth_interacting.png``: keypoints, masks and part segmentation of the first
samples overlaid on the images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers, name: str, help_text: str) -> None:
    # no engine import here: ``hand-recon --help`` must not import torch (names are checked in ``run``)
    p = subparsers.add_parser(name, help=help_text, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", required=True,
                   help="scene family: single, interacting, multi or hand_object (aliases such as two-hand work)")
    p.add_argument("--count", type=int, required=True, help="number of samples")
    p.add_argument("--size", type=int, default=None,
                   help="square image side in pixels (default per family: single 224, interacting 256, multi 512, "
                        "hand_object 256)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="stream seed (sample i is a function of seed and i)")
    p.add_argument("--shard-size", type=int, default=256, help="samples per shard file")
    p.add_argument("--workers", type=int, default=1, help="generating processes")
    p.add_argument("--hand-model", default="open", help="hand model: 'open', 'mano' or a model file")
    p.add_argument("--background-dir", type=Path, default=None, help="folder of background images (optional)")
    p.add_argument("--no-extras", action="store_true",
                   help="store only the sample-format keys (no centres, interacting pairs, lighting, albedo, "
                        "objects ...)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="family parameter (YAML value), e.g. --param truncation_prob=0.3; repeatable")
    p.add_argument("--preview", action="store_true", help="write a contact sheet of the first samples")
    p.add_argument("--preview-count", type=int, default=4, help="samples in the contact sheet")
    p.add_argument("--preview-path", type=Path, default=None,
                   help="contact sheet file (default OUT/synth_<family>.png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _params(items: list[str]) -> dict:
    import yaml

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        params[key.strip()] = yaml.safe_load(value)
    return params


def run(args: argparse.Namespace) -> int:
    from hand_recon_core.data.synthetic.dataset import canonical_family
    from hand_recon_core.data.synthetic.preview import write_contact_sheet
    from hand_recon_core.data.synthetic.writer import generate_shards

    try:
        params = _params(args.param)
    except ValueError as exc:
        print(f"hand-recon synth: {exc}", file=sys.stderr)
        return 2
    try:
        family = canonical_family(args.family)
    except KeyError as exc:
        print(f"hand-recon synth: {exc.args[0]}", file=sys.stderr)
        return 2
    keep = args.preview_count if args.preview else 0
    extras = not args.no_extras
    meta, kept = generate_shards(family, args.count, args.out, size=args.size, seed=args.seed,
                                 shard_size=args.shard_size, workers=args.workers, hand_model=args.hand_model,
                                 background_dir=args.background_dir, extras=extras, params=params, keep=keep,
                                 progress=not args.quiet)
    print(f"wrote {meta['count']} {family} samples ({meta['size']} px) in {len(meta['shards'])} shard(s) to {args.out}")
    if args.preview and kept:
        path = args.preview_path or args.out / f"synth_{family}.png"
        title = f"synth {family}  seed {args.seed}  {meta['size']} px  (image | keypoints | mask | parts | dense)"
        write_contact_sheet(path, kept, title=title)
        print(f"preview: {path}")
    return 0
