#!/usr/bin/env python
"""Evaluate a point of the default model's lineage on held-out objects, paired with the shipped pipeline, and
redraw the lineage's curves of LPIPS and pose accuracy against samples seen.

    python training/evaluate_lineage.py --pipeline training/state --label campaign \
        --output_dir examples/results/lineage
    python training/evaluate_lineage.py --pipeline pipelines/viewfusion-pybullet-64 --label shipped-2026-12-02 ...

For a campaign state (a folder with `unet_ema/` and `totals.json`) the EMA weights are evaluated, the ones that
would ship. Both datasets (pybullet, the 13 procedural categories), 20 test objects per N, N = 1 / 3 / 6, posed
and unposed, DDPM 50: the same samples and noise for every point, so each is paired with the shipped pipeline's
(`--shipped_label`, by default `SHIPPED_LABEL`). Writes `LABEL-DATASET.json` (the evaluation), adds the point to
`lineage.json`, prints whether it is better than the shipped weights on both datasets and in both modes (every
paired difference, pooled over N, below zero beyond its 95% interval), and redraws `examples/images/lineage.png`.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from viewfusion_diffusers.evaluation import run_evaluation
from viewfusion_diffusers.evaluation.statistics import mean_and_ci, paired_differences
from viewfusion_diffusers.file_utils import atomic_write


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from line_chart import Panel, Series, save_line_chart  # noqa: E402


DATASETS = {
    "pybullet": ["named", "random_urdfs"],
    "categories": [
        "airplane",
        "bench",
        "cabinet",
        "car",
        "chair",
        "display",
        "lamp",
        "loudspeaker",
        "rifle",
        "sofa",
        "table",
        "telephone",
        "watercraft",
    ],
}
MODES = {"unposed": "viewfusion", "posed": "viewfusion_posed"}
NUM_VIEWS = (1, 3, 6)


# The lineage point whose weights are in pipelines/viewfusion-pybullet-64 (shipped on 2026-12-08; the weights shipped
# before are the points "campaign-2026-12-07c", "campaign-2026-12-07-mid" and "shipped-2026-12-02"): each new point
# is paired with it.
SHIPPED_LABEL = "campaign-2026-12-07d"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Evaluate a lineage point against the shipped pipeline and plot the lineage."
    )
    parser.add_argument(
        "--pipeline", required=True, help="A pipeline folder, or a campaign state (its EMA is evaluated)."
    )
    parser.add_argument("--label", required=True, help="The point's name in lineage.json and the file names.")
    parser.add_argument(
        "--samples_seen",
        type=int,
        default=None,
        help="Training samples behind these weights (default: the state's totals.json).",
    )
    parser.add_argument("--data_dir", default=str(ROOT / "data" / "pybullet-64"), help="The rendered dataset.")
    parser.add_argument("--num_objects", type=int, default=20, help="Test objects per N and dataset (default 20).")
    parser.add_argument(
        "--output_dir",
        default=str(ROOT / "examples" / "results" / "lineage"),
        help="Where the evaluations and lineage.json go.",
    )
    parser.add_argument(
        "--shipped_label", default=SHIPPED_LABEL, help="The point the new one is paired with (the shipped weights')."
    )
    parser.add_argument(
        "--figure", default=str(ROOT / "examples" / "images" / "lineage.png"), help="The lineage figure."
    )
    parser.add_argument("--batch_size", type=int, default=12, help="Samples per pipeline call.")
    return parser.parse_args(argv)


def pipeline_to_evaluate(folder: Path, staging: Path) -> Path:
    """The folder itself, or for a campaign state a pipeline of its EMA weights written to `staging`."""
    if not (folder / "unet_ema").is_dir():
        return folder
    pipeline = ViewFusionPipeline.from_pretrained(folder)
    # The EMA's weights into the pipeline's own U-Net: the EMA folder's config also holds the EMA's bookkeeping
    # (decay, step count), which is no U-Net setting and would follow the weights into a shipped folder.
    ema = ViewFusionUNet2DModel.from_pretrained(folder / "unet_ema")
    pipeline.unet.load_state_dict({name: weight.float() for name, weight in ema.state_dict().items()})
    pipeline.save_pretrained(staging)
    return staging


def summary(records) -> dict:
    """Per mode (and the two baselines): LPIPS and pose accuracy per N."""
    out = {}
    for name in (*MODES.values(), "nearest_view", "mean_view"):
        rows = [r for r in records if r["method"] == name]
        out[name] = {
            str(n): {
                "lpips": float(np.mean([r["lpips"] for r in rows if r["num_views"] == n])),
                "pose_within_15": float(np.mean([r["pose_within_15"] for r in rows if r["num_views"] == n])),
            }
            for n in NUM_VIEWS
        }
    return out


def better_than(records, reference) -> tuple[bool, list[str]]:
    """Whether `records` beat `reference` in both modes (pooled paired LPIPS difference below zero beyond its 95%
    interval), and one line per mode."""
    lines, better = [], True
    for mode, method in MODES.items():
        differences = paired_differences(records, method, method, reference_records=reference)
        per_n = ", ".join(
            f"N={n}: {mean_and_ci(d)[0]:+.3f} ± {mean_and_ci(d)[1]:.3f}" for n, d in sorted(differences.items())
        )
        mean, half_width, _ = mean_and_ci(np.concatenate(list(differences.values())))
        better &= mean + half_width < 0
        lines.append(f"{mode}: {mean:+.3f} ± {half_width:.3f} pooled ({per_n})")
    return better, lines


def draw_lineage(points: list[dict], path) -> None:
    """LPIPS and pose accuracy (means over N) against samples seen, per dataset and mode, with the baselines."""
    points = sorted(points, key=lambda p: p["samples_seen"])
    xs = [p["samples_seen"] / 1000 for p in points]
    panels = []
    for dataset in DATASETS:
        mean_over_n = lambda p, method, metric: float(np.mean([p[dataset][method][str(n)][metric] for n in NUM_VIEWS]))
        lpips = [Series(mode, xs, [mean_over_n(p, method, "lpips") for p in points]) for mode, method in MODES.items()]
        lpips += [
            Series(name.replace("_", " "), [xs[0], xs[-1]], [mean_over_n(points[-1], name, "lpips")] * 2, dashed=True)
            for name in ("nearest_view", "mean_view")
        ]
        pose = [
            Series(mode, xs, [100 * mean_over_n(p, method, "pose_within_15") for p in points])
            for mode, method in MODES.items()
        ]
        pose.append(Series("target 80%", [xs[0], xs[-1]], [80, 80], dashed=True))
        panels.append(
            Panel(f"{dataset}: LPIPS, mean over N = 1/3/6", "training samples seen (thousands)", "LPIPS", lpips)
        )
        panels.append(Panel(f"{dataset}: pose within 15 degrees", "training samples seen (thousands)", "%", pose))
    save_line_chart(panels, path, size=(420, 320))


def main(args):
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    folder = Path(args.pipeline)
    samples_seen = args.samples_seen
    if samples_seen is None:
        if not (folder / "totals.json").exists():
            raise SystemExit("evaluate_lineage.py: error: pass --samples_seen for a pipeline without totals.json")
        samples_seen = json.loads((folder / "totals.json").read_text())["samples_seen"]
    point = {"label": args.label, "pipeline": str(folder), "samples_seen": samples_seen}
    if (folder / "totals.json").exists():
        totals = json.loads((folder / "totals.json").read_text())
        point.update({k: totals[k] for k in ("cpu_core_hours", "gpu_hours", "optimizer_steps")})
    staging = Path(tempfile.mkdtemp(prefix="lineage-"))
    try:
        pipeline = pipeline_to_evaluate(folder, staging / "pipeline")
        verdicts = []
        for dataset, categories in DATASETS.items():
            destination = output / f"{args.label}-{dataset}.json"
            results = run_evaluation(
                str(pipeline),
                args.data_dir,
                str(staging / dataset),
                categories=categories,
                num_views=NUM_VIEWS,
                num_objects=args.num_objects,
                posed=True,
                methods=tuple(MODES.values()),
                batch_size=args.batch_size,
            )
            results["config"]["pipeline"] = str(folder)
            with atomic_write(destination, "w") as f:
                json.dump(results, f, indent=1, default=str)
            point[dataset] = summary(results["records"])
            point["sha256"] = results["pipeline"]["sha256"]
            shipped = output / f"{args.shipped_label}-{dataset}.json"
            if shipped.exists() and args.label != args.shipped_label:
                better, lines = better_than(results["records"], json.loads(shipped.read_text())["records"])
                verdicts.append(better)
                print(f"{dataset}, {args.label} minus {args.shipped_label} (paired LPIPS):\n  " + "\n  ".join(lines))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    lineage_path = output / "lineage.json"
    lineage = json.loads(lineage_path.read_text()) if lineage_path.exists() else {"points": []}
    lineage["points"] = [p for p in lineage["points"] if p["label"] != args.label] + [point]
    with atomic_write(lineage_path, "w") as f:
        json.dump(lineage, f, indent=1)
    draw_lineage(lineage["points"], args.figure)
    if verdicts:
        ship = all(verdicts) and len(verdicts) == len(DATASETS)
        print(f"Better than {args.shipped_label} on both datasets and in both modes: {'yes' if ship else 'no'}")
    print(f"Wrote {lineage_path} and {args.figure}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(parse_args())
