"""The recipe study's tables and figure from its runs, evaluations and validation losses.

python summarize.py STUDY_DIR --reference base --variants shipped base base-raw snr5 lr6e-4 bs16 pd0 \
    [--scratch scratch-small-v scratch-small-x0 scratch-xs-v] > tables.md

STUDY_DIR holds one folder per trained variant (its pipeline, checkpoints and model card), `eval/NAME-DATASET/
results.json` (eval_variant.sh), `val_loss.json` and `val_loss_curves.json` (training/validation_loss.py).
Draws the loss curves to `--figure` (default: `loss_curves.png` beside this file).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # examples/, for line_chart
from line_chart import Panel, Series, save_line_chart  # noqa: E402

from viewfusion_diffusers.evaluation.statistics import mean_and_ci, paired_differences  # noqa: E402


DATASETS = ("pybullet", "categories")
MODES = {"unposed": "viewfusion", "posed": "viewfusion_posed"}


def card_config(run_dir: Path) -> dict | None:
    """The training configuration that a finished run's model card holds in its ```json block."""
    card = run_dir / "README.md"
    if not (run_dir / "DONE").exists() or not card.exists() or "```json" not in card.read_text():
        return None
    text = card.read_text()
    start = text.index("```json") + len("```json")
    return json.loads(text[start : text.index("```", start)])


def training_summary(run_dir: Path) -> dict | None:
    """Steps, samples and CPU minutes of a trained variant, from the training configuration in its model card."""
    config = card_config(run_dir)
    if config is None:
        return None
    samples = config["trained_steps"] * config["train_batch_size"]
    return {
        "steps": config["trained_steps"],
        "samples": samples,
        "cpu_minutes": config.get("train_cpu_minutes"),
        "samples_per_cpu_second": samples / (60 * config["train_cpu_minutes"])
        if config.get("train_cpu_minutes")
        else None,
    }


def load_records(study: Path, name: str, dataset: str) -> list | None:
    path = study / "eval" / f"{name}-{dataset}" / "results.json"
    return json.loads(path.read_text())["records"] if path.exists() else None


def cell(values, digits: int = 3) -> str:
    mean, half_width, _ = mean_and_ci(values)
    return f"{mean:+.{digits}f} ± {half_width:.{digits}f}"


def pooled(differences: dict) -> np.ndarray:
    return np.concatenate([differences[n] for n in sorted(differences)])


def main(args):
    study = Path(args.study_dir)
    val = json.loads((study / "val_loss.json").read_text())["models"] if (study / "val_loss.json").exists() else {}
    val_by_name = {Path(path).name: losses for path, losses in val.items()}
    names = args.variants + args.scratch
    print("## Cost and validation loss (128 val samples, the same for every variant)\n")
    print(
        "| variant | steps | samples | CPU min | samples / CPU-s | val loss posed | val loss unposed | posed − "
        "unposed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        run = training_summary(study / name)
        losses = val_by_name.get(name)
        cells = ["-"] * 4
        if run:
            cells = [
                str(run["steps"]),
                str(run["samples"]),
                f"{run['cpu_minutes']:.1f}",
                f"{run['samples_per_cpu_second']:.2f}",
            ]
        if losses:
            cells += [
                f"{np.mean(losses['posed']):.5f}",
                f"{np.mean(losses['unposed']):.5f}",
                cell(np.subtract(losses["posed"], losses["unposed"]), 5),
            ]
        else:
            cells += ["-"] * 3
        print(f"| {name} | " + " | ".join(cells) + " |")

    reference_eval = study / "eval" / f"{args.reference}-{DATASETS[0]}" / "results.json"
    num_objects = json.loads(reference_eval.read_text())["config"]["num_objects"] if reference_eval.exists() else "?"
    print(f"\n## Held-out LPIPS (mean over N = 1 / 3 / 6, {num_objects} test objects per N) and pose ±15°\n")
    header = " | ".join(f"{d} {m}" for d in DATASETS for m in MODES)
    print(
        f"| variant | {header} | "
        + " | ".join(f"{d} {m} − {args.reference} (paired)" for d in DATASETS for m in MODES)
        + " |"
    )
    print("|---" * (1 + 4 * len(DATASETS)) + "|")
    for name in names:
        cells, differences = [], []
        for dataset in DATASETS:
            records, reference = load_records(study, name, dataset), load_records(study, args.reference, dataset)
            for method in MODES.values():
                rows = [r for r in records or [] if r["method"] == method]
                if not rows:
                    cells.append("-")
                    differences.append("-")
                    continue
                lpips, pose = np.mean([r["lpips"] for r in rows]), 100 * np.mean([r["pose_within_15"] for r in rows])
                cells.append(f"{lpips:.3f} ({pose:.0f}%)")
                if name == args.reference or reference is None:
                    differences.append("-")
                else:
                    differences.append(
                        cell(pooled(paired_differences(records, method, method, reference_records=reference)))
                    )
        print(f"| {name} | " + " | ".join(cells + differences) + " |")

    print("\n## Per N: LPIPS, and minus the reference on the same samples (paired, 95% CI)\n")
    for dataset in DATASETS:
        reference = load_records(study, args.reference, dataset)
        for mode, method in MODES.items():
            print(f"\n{dataset}, {mode}:\n")
            print("| variant | N = 1 | N = 3 | N = 6 | − ref, N = 1 | − ref, N = 3 | − ref, N = 6 |")
            print("|---|---|---|---|---|---|---|")
            for name in names + ["nearest_view", "mean_view"]:
                source = name if name not in ("nearest_view", "mean_view") else args.reference
                records = load_records(study, source, dataset)
                wanted = method if source == name else name
                rows = [r for r in records or [] if r["method"] == wanted]
                if not rows:
                    continue
                means = [f"{np.mean([r['lpips'] for r in rows if r['num_views'] == n]):.3f}" for n in (1, 3, 6)]
                if source == name and name != args.reference and reference is not None:
                    diff = paired_differences(records, method, method, reference_records=reference)
                    means += [cell(diff[n]) for n in (1, 3, 6)]
                else:
                    means += ["-"] * 3
                print(f"| {name} | " + " | ".join(means) + " |")

    curves_path = study / "val_loss_curves.json"
    if curves_path.exists():
        curves = json.loads(curves_path.read_text())["models"]
        panels = []
        for mode in ("unposed", "posed"):
            series = []
            for name in args.variants:
                checkpoints = [(p, v) for p, v in curves.items() if Path(p).parts[-3] == name]
                batch = card_config(study / name)["train_batch_size"] if checkpoints else None
                points = sorted(
                    (int(Path(p).parent.name.split("-")[1]) * batch, float(np.mean(v[mode]))) for p, v in checkpoints
                )
                start = val_by_name.get(args.start)
                if points and start:
                    points = [(0, float(np.mean(start[mode])))] + points
                if points:
                    series.append(Series(name, [p[0] for p in points], [p[1] for p in points]))
            panels.append(
                Panel(
                    f"validation loss, {mode} (EMA weights, 128 samples)", "training samples seen", "MSE of v", series
                )
            )
        save_line_chart(panels, Path(args.figure))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Tables and loss curves of the recipe study.")
    parser.add_argument("study_dir", help="The folder of the study's runs and evaluations.")
    parser.add_argument("--variants", nargs="+", required=True, help="Fine-tuned variants (and the shipped start).")
    parser.add_argument(
        "--figure", default=str(Path(__file__).with_name("loss_curves.png")), help="Where to draw the loss curves."
    )
    parser.add_argument("--scratch", nargs="*", default=[], help="Variants trained from scratch.")
    parser.add_argument("--reference", default="base", help="The variant the others are paired with.")
    parser.add_argument(
        "--start",
        default="viewfusion-pybullet-64",
        help="The model the fine-tunes started from: the curves' first point (its folder name in val_loss.json).",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(parse_args())
