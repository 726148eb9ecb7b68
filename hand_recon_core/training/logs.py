"""Run logs on rank 0: CSV files (always), TensorBoard (when installed) and a PNG of the training curves.

Files under the output directory:

* ``logs/train.csv`` and ``logs/val.csv``: one row per logged step, columns ``step, epoch`` and the metric
  names (``loss``, the method's named loss parts, ``lr``, ``grad_norm`` ... / ``val/...``). On resume, rows
  logged after the checkpoint's step (by the run that was interrupted) are dropped, so the files read as one
  uninterrupted run.
* ``tb/``: TensorBoard event files (``torch.utils.tensorboard``), purged after the resumed step likewise.
* ``curves.png``: every train/val metric against the step (matplotlib, Agg backend), written at the end.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["RunLogger", "plot_curves", "read_csv_rows"]

logger = logging.getLogger(__name__)


def read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a log CSV as floats (empty cells become NaN)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()} for row in rows]


class _CsvLog:
    """A CSV file whose columns grow when new metric names appear (the file is rewritten then)."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []
        if resume_step is not None:
            self.rows = [{**r, "step": int(r["step"])} for r in read_csv_rows(path)
                         if r.get("step", math.inf) <= resume_step]
        self.columns: list[str] = ["step", "epoch"]
        for row in self.rows:
            self.columns += [k for k in row if k not in self.columns]
        self._rewrite()

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, restval="")
            w.writeheader()
            w.writerows(self.rows)

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns += new
            self._rewrite()
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns, restval="").writerow(row)


class RunLogger:
    """CSV + TensorBoard logging of one run; a no-op object on ranks other than 0.

    Args:
        out_dir: the run's output directory.
        enabled: False on ranks other than 0.
        tensorboard: also write TensorBoard events when ``tensorboard`` is installed (one log line otherwise).
        resume_step: the step a resumed run continues from (later rows are dropped); None for a fresh run.
    """

    def __init__(self, out_dir: Path, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self._tb = None
        self._csv: dict[str, _CsvLog] = {}
        if not enabled:
            return
        for split in ("train", "val"):
            self._csv[split] = _CsvLog(self.out_dir / "logs" / f"{split}.csv", resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                logger.info("TensorBoard logging skipped: tensorboard is not installed (%s)", exc)
            else:
                self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=resume_step)

    def log(self, split: str, step: int, epoch: float, metrics: Mapping[str, float]) -> None:
        """Record ``metrics`` (name -> float) of ``split`` (``"train"`` or ``"val"``) at ``step``."""
        if not self.enabled:
            return
        row: dict[str, Any] = {"step": int(step), "epoch": float(epoch)}
        row.update({k: float(v) for k, v in metrics.items()})
        self._csv[split].append(row)
        if self._tb is not None:
            for k, v in metrics.items():
                tag = k if "/" in k else f"{split}/{k}"
                self._tb.add_scalar(tag, float(v), int(step))

    def rows(self, split: str) -> list[dict[str, float]]:
        """Rows logged so far (including those kept from before a resume)."""
        return list(self._csv[split].rows) if self.enabled else []

    def close(self, curves: bool = True) -> Path | None:
        """Flush TensorBoard and (optionally) write ``curves.png``; returns its path when written."""
        if not self.enabled:
            return None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if curves:
            return plot_curves(self.rows("train"), self.rows("val"), self.out_dir / "curves.png")
        return None


def plot_curves(train_rows: list[dict[str, float]], val_rows: list[dict[str, float]], path: Path) -> Path | None:
    """One subplot per metric (train and val against the step); losses on a log axis when positive.

    Returns:
        ``path``, or None when there is nothing to plot or matplotlib is missing (one log line).
    """
    if not train_rows and not val_rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        logger.info("curves.png skipped: matplotlib is not installed (%s)", exc)
        return None
    names = {k.removeprefix("val/") for row in (*train_rows, *val_rows) for k in row if k not in ("step", "epoch")}
    base = sorted(names, key=lambda n: (n != "loss", n == "lr", n))  # loss first, lr last
    cols = min(3, len(base))
    nrows = -(-len(base) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, base):
        for rows, key, label in ((train_rows, name, "train"), (val_rows, f"val/{name}", "val")):
            pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, label=label, marker="." if len(pts) < 30 else None)
        ys_all = [r[k] for rows, k in ((train_rows, name), (val_rows, f"val/{name}")) for r in rows
                  if k in r and math.isfinite(r[k])]
        if ys_all and min(ys_all) > 0 and (name == "lr" or "loss" in name or max(ys_all) / min(ys_all) > 100):
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(base):]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
