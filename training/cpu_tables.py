"""Collect the evaluation JSON of the CPU runs (training/cpu_defaults.sh) into tables and copy them to results/.

    python training/cpu_tables.py --runs runs/cpu --out training/results

Writes one JSON per evaluated row into ``<out>`` (the run's ``metrics.json`` with its mean-pose baseline and
training budget: ``<experiment>.json`` for ``eval``, ``<experiment>_initial.json``, ``pipeline_<name>.json``,
``<experiment>_<folder>.json`` for other folders) and ``<out>/RESULTS.md`` (one markdown table per comparison).
Units: millimetres for 3D errors, pixels for MIAA, cubic centimetres for interpenetration volume, fractions for
AP / accuracy.

Runs of earlier sessions live on other machines: a row whose run folder is missing here is read from its JSON in
``<out>``; a row with neither keeps its line from the previous ``RESULTS.md`` (same table title and row label),
marked "(earlier session)".
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import yaml

#: (table title, [(row label, experiment folder, eval sub-folder)]).
TABLES = [
    ("Single-stage detector (multi-hand held-out set)", [
        ("single-stage + keypoint lifter, 6D orientation (default: stages 0 + 1 on crops, stage 2 on scenes)",
         "single_stage_lifter", "eval"),
        ("mean-pose baseline at its detections", "single_stage_lifter", "eval/baseline_mean-pose"),
        ("single-stage without lifter (stages 0 + 1 on crops, stage 2 on scenes)", "single_stage", "eval"),
        ("mean-pose baseline at its detections", "single_stage", "eval/baseline_mean-pose"),
        ("first attempt: from scratch on scenes, 1200 steps", "single_stage_v1_scratch", "eval"),
        ("mean-pose baseline at the first attempt's detections", "single_stage_v1_scratch",
         "eval/baseline_mean-pose"),
    ]),
    ("Single-stage detector (single-hand held-out crops)", [
        ("single-stage + keypoint lifter (default)", "single_stage_lifter", "eval_single"),
        ("mean-pose baseline at its detections", "single_stage_lifter", "eval_single/baseline_mean-pose"),
    ]),
    ("Single-stage stage 1 on held-out crops (centre known: eval_centres=ground_truth, so AP and handedness "
     "are not measured; 1500 steps x 32)", [
        ("axis-angle orientation (paper)", "single_stage_stage1", "eval_single"),
        ("6D orientation", "single_stage_stage1_6d", "eval_single"),
        ("6D orientation + keypoint lifter", "single_stage_stage1_lifter", "eval_single"),
        ("mean-pose baseline (6D run's matches)", "single_stage_stage1_6d", "eval_single/baseline_mean-pose"),
    ]),
    ("Single-stage ablation (its Table IV direction) on the lifter chain's stage 1: held-out crops, centre known "
     "(AP and handedness not measured), 750 steps each", [
        ("without bone + consistency", "single_stage_ablation_lifter_base", "eval_single"),
        ("with bone + consistency", "single_stage_ablation_lifter_full", "eval_single"),
    ]),
    ("Single-stage ablation in the paper's setting (its Table IV is weakly supervised: 2D labels only) on the lifter "
     "chain's stage 1: held-out crops, centre known and every hand scored (--min-affinity 0), 500 steps each; "
     "compare PA-MPJPE (depth and scale are not observable from 2D labels)", [
        ("reprojection + regularisation (without bone + consistency)", "single_stage_ablation_weak_base",
         "eval_single_all"),
        ("+ bone direction + consistency", "single_stage_ablation_weak_full", "eval_single_all"),
        ("mean-pose baseline", "single_stage_ablation_weak_full", "eval_single_all/baseline_mean-pose"),
    ]),
    ("Single-stage ablation, first attempt (from scratch on scenes; 300 steps each)", [
        ("without bone + consistency", "single_stage_ablation_base", "eval"),
        ("with bone + consistency", "single_stage_ablation_full", "eval"),
    ]),
    ("ACR, its Table 3 variants (interacting held-out set; G and G+P are the first session's from-scratch runs, "
     "not yet rerun with the set-up of G+C+P: the detector's backbone and keypoint branch, keypoint lifter)", [
        ("G (first session: from scratch, 300 steps)", "acr_g", "eval"),
        ("G+P (first session: from scratch, 300 steps)", "acr_gp", "eval"),
        ("G+C+P (default config)", "acr_gcp", "eval"),
        ("mean-pose baseline at G+C+P's detections", "acr_gcp", "eval/baseline_mean-pose"),
        ("G+C+P, lifter without the detector's keypoint branch, global keypoint read (first try)",
         "acr_gcp_nokpinit", "eval"),
    ]),
    ("DIR ablation (its Table 1 / Sec. 4.4; interacting held-out set; every arm from the detector's backbone and "
     "keypoint branch, with the keypoint lifter in the initial estimate; interpenetration on the first 100 images)", [
        ("initial estimate (stage 0) of the default", "dir", "eval_initial"),
        ("T = 1, multi-plane", "dir_t1", "eval"),
        ("T = 2, single-plane", "dir_single_plane", "eval"),
        ("T = 2, multi-plane (default)", "dir", "eval"),
        ("mean-pose baseline", "dir", "eval/baseline_mean-pose"),
    ]),
    ("HandDGCL ablation (its Table 2; interacting held-out set; both arms from the detector's backbone and keypoint "
     "branch, with the keypoint lifter)", [
        ("GCN", "dgcl_gcn", "eval"),
        ("GCN + DGCLNet", "dgcl", "eval"),
    ]),
    ("Detector alone vs detector + DIR refiner (interacting held-out set, through the Pipeline; the shipped "
     "detector; interpenetration on the first 100 images)", [
        ("single-stage detector alone", "pipeline", "detector_alone"),
        ("single-stage + DIR refiner", "pipeline", "detector_dir"),
    ]),
]

#: (column, metric key, scale, digits).
COLUMNS = [
    ("MPJPE mm", "mpjpe/wrist", 1e3, 1),
    ("MPVPE mm", "mpvpe/wrist", 1e3, 1),
    ("PA-MPJPE mm", "mpjpe/pa", 1e3, 1),
    ("rot. deg", "rotation_error_deg", 1, 1),
    ("AP@0.5", "detection_ap50", 1, 3),
    ("hand acc", "handedness_accuracy", 1, 3),
    ("recall", "recall", 1, 3),
    ("MRRPE mm", "mrrpe", 1e3, 1),
    ("MIAA px", "miaa", 1, 2),
    ("pen. cm^3", "penetration_volume", 1e6, 2),
]


def stored_name(exp: str, sub: str) -> str:
    """File stem of a row's JSON in the results folder (a baseline row: its model row's file)."""
    sub = sub.split("/baseline_mean-pose")[0]
    if exp == "pipeline":
        return f"pipeline_{sub}"
    return {"eval": exp, "eval_initial": f"{exp}_initial"}.get(sub, f"{exp}_{sub}")


EARLIER = " (earlier session)"


def _previous_rows(results_md: Path) -> dict[tuple[str, str, int], str]:
    """``(table title, row label, n-th row of that label) -> markdown row`` of an earlier RESULTS.md."""
    rows: dict[tuple[str, str, int], str] = {}
    if not results_md.is_file():
        return rows
    title = ""
    for line in results_md.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
        elif line.startswith("| ") and title and not line.startswith("| run |"):
            label = line.split(" | ")[0][2:].strip().removesuffix(EARLIER)
            n = sum(1 for key in rows if key[:2] == (title, label))
            rows[(title, label, n)] = line
    return rows


def _row_result(runs: Path, out: Path, exp: str, sub: str) -> tuple[dict | None, str]:
    """``(metrics.json content, budget)`` of a row: the run folder here, else the stored JSON, else ``None``."""
    path = runs / exp / sub / "metrics.json"
    if path.is_file():
        return json.loads(path.read_text()), _stage(runs / exp)
    stored = out / f"{stored_name(exp, sub)}.json"
    if not stored.is_file():
        return None, ""
    payload = json.loads(stored.read_text())
    if sub.endswith("/baseline_mean-pose"):
        return payload.get("baseline_mean_pose"), payload.get("budget", "")
    return payload, payload.get("budget", "")


def _value(metrics: dict, key: str, scale: float, digits: int) -> str:
    entry = metrics.get(key)
    if not entry or entry.get("value") is None:
        return "-"
    return f"{entry['value'] * scale:.{digits}f}"


def _stage(run: Path) -> str:
    cfg_file = run / "config.yaml"
    if not cfg_file.is_file():
        return ""
    cfg = yaml.safe_load(cfg_file.read_text())
    return f"{cfg['train'].get('max_steps')} steps x batch {cfg['data']['batch_size']}"


def beats_baseline(eval_dir: Path, margin: float = 0.8, min_recall: float = 0.5) -> tuple[bool, str]:
    """Whether a run's held-out evaluation beats its mean-pose baseline "by a wide margin".

    Wide margin: root-relative MPJPE below ``margin`` x the baseline's, and at least ``min_recall`` of the
    ground-truth hands matched. Returns ``(ok, reason)``.
    """
    path = eval_dir / "metrics.json"
    base_path = eval_dir / "baseline_mean-pose" / "metrics.json"
    if not path.is_file() or not base_path.is_file():
        return False, f"no evaluation with baseline in {eval_dir}"
    m = json.loads(path.read_text())["metrics"]
    b = json.loads(base_path.read_text())["metrics"]
    recall = m["recall"]["value"] or 0.0
    ours, theirs = m["mpjpe/wrist"]["value"], b["mpjpe/wrist"]["value"]
    if recall < min_recall or ours is None or theirs is None:
        return False, f"recall {recall:.2f} < {min_recall} (or no 3D error)"
    if ours >= margin * theirs:
        return False, f"MPJPE {ours * 1e3:.1f} mm is not below {margin} x the baseline's {theirs * 1e3:.1f} mm"
    return True, f"MPJPE {ours * 1e3:.1f} mm vs baseline {theirs * 1e3:.1f} mm, recall {recall:.2f}"


def refiner_helps(pipeline_dir: Path, max_recall_drop: float = 0.02) -> tuple[bool, str]:
    """Whether detector + refiner beats the detector alone through the Pipeline (``pipeline/detector_dir`` vs
    ``pipeline/detector_alone``): lower root-relative MPJPE without losing more than ``max_recall_drop`` recall.
    The packaged refiner joins every default pipeline, so it ships only when it helps. Returns ``(ok, reason)``."""
    paths = [pipeline_dir / name / "metrics.json" for name in ("detector_alone", "detector_dir")]
    if not all(p.is_file() for p in paths):
        return False, f"no detector-alone / detector + refiner evaluation in {pipeline_dir}"
    alone, both = (json.loads(p.read_text())["metrics"] for p in paths)
    a, b = alone["mpjpe/wrist"]["value"], both["mpjpe/wrist"]["value"]
    ra, rb = alone["recall"]["value"] or 0.0, both["recall"]["value"] or 0.0
    if a is None or b is None or b >= a or rb < ra - max_recall_drop:
        return False, (f"with the refiner MPJPE {1e3 * (b or float('nan')):.1f} mm, recall {rb:.3f}; alone "
                       f"{1e3 * (a or float('nan')):.1f} mm, recall {ra:.3f}")
    return True, f"MPJPE {b * 1e3:.1f} mm with the refiner vs {a * 1e3:.1f} mm alone, recall {rb:.3f} vs {ra:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/cpu"))
    parser.add_argument("--out", type=Path, default=Path("training/results"))
    parser.add_argument("--gate", metavar="EXPERIMENT", default=None,
                        help="only check that EXPERIMENT's evaluation beats its baseline by a wide margin "
                             "(exit 1 otherwise): packaging refuses a default worse than trivial")
    parser.add_argument("--gate-refiner", action="store_true",
                        help="only check that detector + refiner beats the detector alone through the Pipeline "
                             "(RUNS/pipeline; exit 1 otherwise)")
    args = parser.parse_args(argv)
    if args.gate_refiner:
        ok, reason = refiner_helps(args.runs / "pipeline")
        print(f"refiner: {'passes' if ok else 'FAILS'} the pipeline gate: {reason}")
        return 0 if ok else 1
    if args.gate is not None:
        ok, reason = beats_baseline(args.runs / args.gate / "eval")
        print(f"{args.gate}: {'passes' if ok else 'FAILS'} the baseline gate: {reason}")
        return 0 if ok else 1
    args.out.mkdir(parents=True, exist_ok=True)
    previous = _previous_rows(args.out / "RESULTS.md")
    lines = ["# CPU-trained checkpoints: evaluation tables", "",
             "Made by `python training/cpu_tables.py` from the runs of `training/cpu_defaults.sh` (2-core CPU, "
             "128 px synthetic images, ResNet-18). Root-relative errors align the wrist (mano21 joint 0); PA is "
             "Procrustes; every number's alignment is spelled out in the JSON next to it.", ""]
    for title, rows in TABLES:
        lines += [f"## {title}", "", "| run | budget | images | " + " | ".join(c[0] for c in COLUMNS) + " |",
                  "|---|---|---|" + "---|" * len(COLUMNS)]
        seen: dict[str, int] = {}
        for label, exp, sub in rows:
            old = previous.get((title, label, seen.get(label, 0)))
            seen[label] = seen.get(label, 0) + 1
            result, budget = _row_result(args.runs, args.out, exp, sub)
            if result is None:
                if old is None or "(not run)" in old:
                    lines.append(f"| {label} | (not run) |" + " |" * (len(COLUMNS) + 1))
                else:
                    lines.append(old if EARLIER in old else old.replace(f"| {label} |", f"| {label}{EARLIER} |", 1))
                continue
            if not budget and old is not None and "(not run)" not in old:  # a JSON stored before budgets were
                budget = old.split(" | ")[1]
            metrics = result["metrics"]
            lines.append(f"| {label} | {budget} | {result['num_images']} | "
                         + " | ".join(_value(metrics, k, s, d) for _, k, s, d in COLUMNS) + " |")
            path = args.runs / exp / sub / "metrics.json"
            if path.is_file() and not sub.endswith("/baseline_mean-pose"):
                payload = dict(result)
                payload.pop("baseline", None)
                base = path.parent / "baseline_mean-pose" / "metrics.json"
                if base.is_file():
                    payload["baseline_mean_pose"] = json.loads(base.read_text())
                payload["budget"] = budget
                (args.out / f"{stored_name(exp, sub)}.json").write_text(json.dumps(payload, indent=2) + "\n")
        lines.append("")
    lines += ["## DIR training log: root-relative MPJPE of the initial vs the refined estimate (training images, "
              "mean of the last logged window)", "", "| run | initial mm | refined mm |", "|---|---|---|"]
    for exp in ("dir_t1", "dir_single_plane", "dir"):
        log = args.runs / exp / "logs" / "train.csv"
        if log.is_file():
            last = list(csv.DictReader(log.read_text().splitlines()))[-1]
            lines.append(f"| {exp} | {float(last['mpjpe_mm_initial']):.1f} | {float(last['mpjpe_mm']):.1f} |")
    lines.append("")
    notes = args.out / "OBSERVATIONS.md"
    if notes.is_file():
        lines += ["", notes.read_text()]
    (args.out / "RESULTS.md").write_text("\n".join(lines))
    print((args.out / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
