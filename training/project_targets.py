#!/usr/bin/env python
"""Where the default model's lineage is heading: for each target of the campaign, the training samples at which
the lineage's trend reaches it, and what that costs in CPU-core-hours here and in GPU-hours.

    python training/project_targets.py                      # the table, and examples/images/lineage_projection.png
    python training/project_targets.py --since 160000       # fit the points from 160,000 samples on

The campaign is a fine-tune that began from the shipped weights (`--origin`, their samples seen) on a new data
mix, so its clock is the samples trained since then. Each measured quantity (a mode's LPIPS at one N, or its pose
accuracy averaged over N = 1 / 3 / 6) is fitted by a straight line in the logarithm of that clock, over the
lineage's points from `--since` on (by default those since the mix last changed, see `DEFAULT_SINCE`), and the
line is followed to the target: a constant gain per doubling of the campaign's samples. The baselines (nearest and
mean input view) are those of the newest point; every point is evaluated on the same samples. The range comes from
the same fit with each point left out in turn. A log-linear trend is a common description of how quality grows
with training, not a law, and each point's per-N LPIPS carries about ±0.02 of sampling noise (pose accuracy about
±20 points): read the figures as orders of magnitude. Costs are at the newest CPU run's samples per
CPU-core-hour and at the GPU run's samples per GPU-hour (`training/state/totals.json`).
"""

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "training"), str(ROOT / "examples")]
from evaluate_lineage import DATASETS, MODES  # noqa: E402
from evaluate_lineage import NUM_VIEWS as EVALUATED_NUM_VIEWS  # noqa: E402
from line_chart import COLORS, Panel, Series, save_line_chart  # noqa: E402

from viewfusion_diffusers.evaluation.statistics import mean_and_ci, paired_differences  # noqa: E402
from viewfusion_diffusers.file_utils import atomic_write  # noqa: E402


# The numbers of views as lineage.json keys them.
NUM_VIEWS = tuple(str(n) for n in EVALUATED_NUM_VIEWS)
# The lineage's points from here on were trained on the same data mix (pybullet visited 4 times an epoch beside
# the procedural categories); the points before it are off the trend of the mix the campaign trains now.
DEFAULT_SINCE = 176_000
# The shipped weights' samples seen: the campaign's fine-tune started from them.
DEFAULT_ORIGIN = 143_304
# Past this many samples a projection is reported as out of reach rather than as a number.
MAX_SAMPLES = 1e12


@dataclass
class Target:
    """One of the campaign's targets: `mode`'s `metric` on `dataset` (at one N, or averaged over N), or its margin
    over `minus_mode`'s, against a fixed level or a baseline's value at the same N."""

    name: str
    dataset: str
    mode: str
    metric: str  # "lpips" (lower is better) or "pose_within_15" (higher is better)
    num_views: str | None  # None: the mean over N = 1 / 3 / 6
    baseline: str | None = None  # "nearest_view" or "mean_view"
    level: float | None = None
    minus_mode: str | None = None  # the value is `mode`'s minus this mode's, on the same samples

    def measure(self, point: dict, method: str) -> float:
        results = point[self.dataset][method]
        if self.num_views is None:
            return float(np.mean([results[n][self.metric] for n in NUM_VIEWS]))
        return results[self.num_views][self.metric]

    def value(self, point: dict) -> float:
        other = self.measure(point, MODES[self.minus_mode]) if self.minus_mode else 0.0
        return self.measure(point, MODES[self.mode]) - other

    def threshold(self, newest: dict) -> float:
        return self.level if self.baseline is None else self.measure(newest, self.baseline)


def campaign_targets(margins: dict[str, float] | None = None) -> list[Target]:
    """The targets of the campaign, on held-out objects: posed LPIPS below the nearest view at N = 1 and below
    the mean view at every N, and posed pose accuracy of at least 80%, on both datasets; on the categories,
    unposed pose accuracy of at least 50% and unposed LPIPS below the mean view at every N; and posed LPIPS below
    unposed at N = 1 beyond the 95% interval of their paired difference, on both datasets: the mean difference
    below minus the interval's half-width, `margins[dataset]` (that of the newest point; 0 when unknown)."""
    margins = margins or {}
    # At N = 1 the mean of the input views is the one input view: "below the nearest view at N = 1" and "below the
    # mean view at N = 1" are the same target.
    lpips_below_mean_view = lambda dataset, mode: [
        Target(f"{dataset} {mode} LPIPS < mean view, N={n}", dataset, mode, "lpips", n, baseline="mean_view")
        for n in NUM_VIEWS
    ]
    pose_at_least = lambda dataset, mode, level: Target(
        f"{dataset} {mode} pose >= {level:.0%}", dataset, mode, "pose_within_15", None, level=level
    )
    return [
        *lpips_below_mean_view("pybullet", "posed"),
        pose_at_least("pybullet", "posed", 0.8),
        *lpips_below_mean_view("categories", "posed"),
        *lpips_below_mean_view("categories", "unposed"),
        pose_at_least("categories", "posed", 0.8),
        pose_at_least("categories", "unposed", 0.5),
        *[
            Target(
                f"{dataset} posed - unposed LPIPS < -interval, N=1",
                dataset,
                "posed",
                "lpips",
                "1",
                level=-margins[dataset] if dataset in margins else 0.0,
                minus_mode="unposed",
            )
            for dataset in DATASETS
        ],
    ]


def posed_minus_unposed_margins(lineage_dir: Path, label: str) -> dict[str, float]:
    """Per dataset, the 95% half-width of the paired posed-minus-unposed LPIPS at N = 1 in the evaluation of the
    lineage point `label` (`training/evaluate_lineage.py` writes its records beside lineage.json); datasets
    without a records file are left out."""
    margins = {}
    for dataset in DATASETS:
        path = lineage_dir / f"{label}-{dataset}.json"
        if path.exists():
            records = json.loads(path.read_text())["records"]
            differences = paired_differences(records, MODES["posed"], MODES["unposed"])
            margins[dataset] = mean_and_ci(differences[1])[1]
    return margins


def fit_log_linear(samples: list[float], values: list[float]) -> tuple[float, float]:
    """`(a, b)` of the least-squares line `value = a + b * ln(samples)`.

    Example:
        ```py
        >>> a, b = fit_log_linear([1e5, 1e6], [0.30, 0.25])
        >>> round(b * math.log(10), 3)  # per tenfold more samples
        -0.05
        ```
    """
    b, a = np.polyfit(np.log(samples), values, 1)
    return float(a), float(b)


def samples_to_reach(a: float, b: float, threshold: float, better: str) -> float:
    """Where the line `a + b * ln(samples)` reaches `threshold` coming from the worse side; `inf` when it moves
    away from it, or does not move.

    Example:
        ```py
        >>> round(samples_to_reach(*fit_log_linear([1e5, 1e6], [0.30, 0.25]), 0.20, "lower"))
        10000000
        >>> samples_to_reach(0.3, 0.01, 0.2, "lower")  # getting worse: never
        inf
        ```
    """
    improving = b < 0 if better == "lower" else b > 0
    if not improving:
        return math.inf
    return math.exp(min((threshold - a) / b, math.log(MAX_SAMPLES) + 1))


def project(points: list[dict], target: Target, origin: int) -> dict:
    """The target's threshold, its value at the newest point, and the samples seen at which the trend fitted to
    the samples since `origin` (and each leave-one-out fit) reaches it."""
    samples = [p["samples_seen"] - origin for p in points]
    values = [target.value(p) for p in points]
    better = "lower" if target.metric == "lpips" else "higher"
    threshold = target.threshold(points[-1])
    met = values[-1] < threshold if better == "lower" else values[-1] >= threshold
    a, b = fit_log_linear(samples, values)
    reach = samples[-1] if met else samples_to_reach(a, b, threshold, better)
    # The fitted line can be past the level while the newest point is not: the trend says "now", no earlier.
    trend_past = not met and reach < samples[-1]
    reach = max(reach, samples[-1])
    left_out = []
    if len(points) >= 3 and not met:
        for i in range(len(points)):
            keep = [j for j in range(len(points)) if j != i]
            fit = fit_log_linear([samples[j] for j in keep], [values[j] for j in keep])
            left_out.append(max(samples_to_reach(*fit, threshold, better), samples[-1]))
    return {
        "target": target.name,
        "metric": target.metric,
        "threshold": threshold,
        "now": values[-1],
        "met": met,
        "trend_past": trend_past,
        "per_doubling": b * math.log(2),
        "fit": (a, b),
        "samples": origin + reach,
        "range": (origin + min(left_out), origin + max(left_out)) if left_out else (origin + reach,) * 2,
    }


def rates(totals: dict) -> tuple[float, float]:
    """Samples per CPU-core-hour of the newest CPU run and per GPU-hour of the newest GPU run."""
    cpu = [r for r in totals["runs"] if r["cpu_core_hours"] > 0 and r["gpu_hours"] == 0]
    gpu = [r for r in totals["runs"] if r["gpu_hours"] > 0]
    per_cpu_hour = cpu[-1]["samples_seen"] / cpu[-1]["cpu_core_hours"] if cpu else math.nan
    per_gpu_hour = gpu[-1]["samples_seen"] / gpu[-1]["gpu_hours"] if gpu else math.nan
    return per_cpu_hour, per_gpu_hour


def human(samples: float) -> str:
    if math.isinf(samples) or samples > MAX_SAMPLES:
        return "out of reach"
    rounded = float(f"{samples:.2g}")  # two significant digits
    return f"{rounded / 1e6:,g}M" if rounded >= 1e6 else f"{rounded / 1e3:,g}k"


def hours(samples: float, seen: float, per_hour: float) -> str:
    if math.isinf(samples) or samples > MAX_SAMPLES or math.isnan(per_hour):
        return "-"
    more = max(samples - seen, 0.0) / per_hour
    return f"{more:.3g}"


def table(projections: list[dict], seen: float, per_cpu_hour: float, per_gpu_hour: float) -> str:
    lines = [
        "| target | level | now | per doubling | samples needed (leave-one-out) | more CPU-core-h | more GPU-h |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for p in projections:
        needed, low, high = human(p["samples"]), human(p["range"][0]), human(p["range"][1])
        if p["met"]:
            needed = "met"
        elif p["trend_past"]:
            needed = "now: the trend is past it, the newest point not"
        if not p["met"] and (low, high) != (human(p["samples"]),) * 2:
            needed += f" ({low} to {high})"
        if p["metric"] == "lpips":
            level, now, per_doubling = f"{p['threshold']:.3f}", f"{p['now']:.3f}", f"{p['per_doubling']:+.3f}"
        else:  # pose accuracy, in percent and percentage points
            level, now = f"{100 * p['threshold']:.0f}%", f"{100 * p['now']:.0f}%"
            per_doubling = f"{100 * p['per_doubling']:+.0f} points"
        lines.append(
            f"| {p['target']} | {level} | {now} | {per_doubling} | {needed} "
            f"| {'-' if p['met'] else hours(p['samples'], seen, per_cpu_hour)} "
            f"| {'-' if p['met'] else hours(p['samples'], seen, per_gpu_hour)} |"
        )
    return "\n".join(lines)


def draw(points: list[dict], projections: list[dict], targets: list[Target], origin: int, path) -> None:
    """One panel per dataset and metric, against the campaign's samples on a log scale: the measured points
    (solid), each fitted trend followed to its target or to ten times the newest point's samples, whichever is
    nearer (dashed, no legend entry), and each target's level (dashed, paler)."""
    xs = [p["samples_seen"] - origin for p in points]
    seen = xs[-1]
    groups = {}
    for target, projection in zip(targets, projections):
        # LPIPS: a panel per mode (three N each); pose accuracy: both modes in one panel; posed against unposed:
        # both datasets in one panel.
        if target.minus_mode:
            key = ("both datasets", "posed - unposed", None)
        else:
            key = (target.dataset, target.metric, target.mode if target.metric == "lpips" else None)
        groups.setdefault(key, []).append((target, projection))
    panels = []
    for (dataset, metric, mode), members in groups.items():
        scale = 100 if metric == "pose_within_15" else 1
        series = []
        for i, (target, projection) in enumerate(members):
            color = COLORS[i % len(COLORS)]
            pale = tuple((c + 2 * 255) // 3 for c in color)
            label = f"N={target.num_views}" if mode else target.dataset if target.minus_mode else target.mode
            series.append(Series(label, xs, [scale * target.value(p) for p in points], color=color))
            a, b = projection["fit"]
            trend_xs = [xs[0], min(max(projection["samples"] - origin, seen), 10 * seen)]
            trend = [scale * (a + b * math.log(x)) for x in trend_xs]
            series.append(Series(None, trend_xs, trend, color=color, dashed=True))
            level = scale * projection["threshold"]
            series.append(Series(f"target, {label}", [xs[0], 10 * seen], [level, level], color=pale, dashed=True))
        if metric == "posed - unposed":
            title, y_label = "posed minus unposed LPIPS, N = 1", "LPIPS difference"
        else:
            title = f"{dataset}: " + (f"LPIPS, {mode}" if mode else "pose within 15 degrees, mean over N")
            y_label = "LPIPS" if metric == "lpips" else "%"
        x_label = f"training samples after the shipped weights' {origin // 1000}k"
        panels.append(Panel(title, x_label, y_label, series, x_log=True))
    save_line_chart(panels, path, size=(520, 380), columns=3)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Project the lineage's trend to the campaign's targets.")
    parser.add_argument(
        "--lineage", default=str(ROOT / "examples" / "results" / "lineage" / "lineage.json"), help="lineage.json."
    )
    parser.add_argument(
        "--totals", default=str(ROOT / "training" / "state" / "totals.json"), help="The state's totals."
    )
    parser.add_argument("--since", type=int, default=DEFAULT_SINCE, help="Fit the points from this many samples on.")
    parser.add_argument(
        "--origin", type=int, default=DEFAULT_ORIGIN, help="Samples seen where the campaign's fine-tune began."
    )
    parser.add_argument(
        "--figure",
        default=str(ROOT / "examples" / "images" / "lineage_projection.png"),
        help="The figure ('' for none).",
    )
    parser.add_argument("--output_json", default=None, help="Also write the projections here.")
    return parser.parse_args(argv)


def main(args):
    points = sorted(json.loads(Path(args.lineage).read_text())["points"], key=lambda p: p["samples_seen"])
    points = [p for p in points if p["samples_seen"] >= args.since and p["samples_seen"] > args.origin]
    if len(points) < 2:
        raise SystemExit(
            f"project_targets.py: error: {len(points)} lineage point(s) from {args.since:,} samples on; a trend needs "
            "two or more (lower --since, or evaluate another point with training/evaluate_lineage.py)."
        )
    margins = posed_minus_unposed_margins(Path(args.lineage).parent, points[-1]["label"])
    for dataset in DATASETS:
        if dataset not in margins:
            print(
                f"Warning: no records of {points[-1]['label']!r} on {dataset} beside {args.lineage}: its posed - "
                "unposed target is against 0, not against the paired interval.",
                file=sys.stderr,
            )
    targets = campaign_targets(margins)
    projections = [project(points, t, args.origin) for t in targets]
    per_cpu_hour, per_gpu_hour = rates(json.loads(Path(args.totals).read_text()))
    seen = points[-1]["samples_seen"]
    print(
        f"{len(points)} points from {points[0]['samples_seen']:,} to {seen:,} samples "
        f"({', '.join(p['label'] for p in points)}); {per_cpu_hour:,.0f} samples per CPU-core-hour, "
        f"{per_gpu_hour:,.0f} per GPU-hour\n"
    )
    if len(points) == 2:
        print(
            "Two points: a line through both, with no leave-one-out range; at the noise of one point the slopes "
            "are rough (lower --since, or evaluate another point, for a range).\n"
        )
    print(table(projections, seen, per_cpu_hour, per_gpu_hour))
    if args.figure:
        draw(points, projections, targets, args.origin, args.figure)
        print(f"\nWrote {args.figure}")
    if args.output_json:
        # Out of reach is infinitely many samples: null in JSON, which has no infinity.
        finite = lambda x: None if isinstance(x, float) and math.isinf(x) else x
        rows = [{k: [finite(x) for x in v] if k == "range" else finite(v) for k, v in p.items()} for p in projections]
        with atomic_write(args.output_json, "w") as f:
            json.dump(rows, f, indent=1, allow_nan=False)


if __name__ == "__main__":
    main(parse_args())
