"""Overlay the training curves of several runs, one subplot per metric.

    python training/compare_curves.py --run "joint=runs/a" --run "2D first=runs/b" \
        --metric keypoint_heatmap --metric joints_3d --out curves.png [--offset "2D first=1000"]

Each run is ``LABEL=DIR`` with ``DIR/logs/train.csv`` written by the trainer; ``--offset LABEL=STEPS`` shifts a
run along the step axis (a run started from another one's weights, drawn after it). Values are the trainer's
unweighted loss terms (metres for the 3D terms, as logged).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def read_train_csv(run: Path) -> list[dict[str, float]]:
    """Rows of ``run/logs/train.csv`` as floats (empty cells dropped).

    Raises:
        FileNotFoundError: the run has no training log.
    """
    path = run / "logs" / "train.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log (is {run} a run directory?)")
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        label, sep, value = item.partition("=")
        if not sep or not label or not value:
            raise SystemExit(f"{what} must be LABEL=VALUE, got {item!r}")
        out[label] = value
    return out


def plot(runs: dict[str, list[dict[str, float]]], metrics: list[str], out: Path,
         offsets: dict[str, float] | None = None) -> Path:
    """Write the comparison figure: one subplot per metric, one line per run (log axis for positive losses)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    offsets = offsets or {}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for i, (label, rows) in enumerate(runs.items()):
            pts = [(r["step"] + offsets.get(label, 0.0), r[metric]) for r in rows
                   if metric in r and math.isfinite(r[metric])]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, label=label, color=f"C{i}")  # one colour per run in every subplot
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="LABEL=RUN_DIR (repeatable)")
    ap.add_argument("--metric", action="append", required=True, help="logged metric (repeatable)")
    ap.add_argument("--offset", action="append", default=[], help="LABEL=STEPS shift along the step axis")
    ap.add_argument("--out", type=Path, required=True, help="output PNG")
    args = ap.parse_args(argv)
    runs = {label: read_train_csv(Path(d)) for label, d in _pairs(args.run, "--run").items()}
    offsets = {label: float(v) for label, v in _pairs(args.offset, "--offset").items()}
    unknown = [label for label in offsets if label not in runs]
    if unknown:
        raise SystemExit(f"--offset names unknown runs {unknown}; runs: {sorted(runs)}")
    print(plot(runs, args.metric, args.out, offsets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
