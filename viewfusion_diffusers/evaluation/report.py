"""What an evaluation writes: results.json, results.md (tables) and labelled image grids."""

import json
import math
import os
from collections import defaultdict

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from ..constants import POSE_TOLERANCE_DEGREES
from ..file_utils import atomic_write, save_image
from ..images import comparison_row
from .methods import method_order
from .statistics import mean_and_ci, paired_differences, paired_lpips_difference


def format_cell(values) -> str:
    """`mean ± 95% CI` of a metric's values, with how many were infinite (identical images) and left out.

    Example:
        ```py
        >>> format_cell([0.1, 0.2, 0.3])
        '0.2000 ± 0.1132'
        ```
    """
    mean, half_width, num_infinite = mean_and_ci(values)
    if math.isinf(mean):
        return "inf (identical)"
    cell = f"{mean:.4f} ± {half_width:.4f}" if abs(mean) < 10 else f"{mean:.2f} ± {half_width:.2f}"
    return cell + (f" ({num_infinite} identical, excluded)" if num_infinite else "")


def _sort_key(key: tuple) -> tuple:
    return tuple(method_order(v) if i == 0 and isinstance(v, str) else v for i, v in enumerate(key))


def results_table(records, group_keys=("method", "num_views")) -> str:
    """A markdown table: one row per group, PSNR / SSIM / LPIPS as mean ± 95% CI, and the pose accuracy: how
    often the true view closest to the output (LPIPS) is within `POSE_TOLERANCE_DEGREES` (one azimuth step) of the
    requested azimuth.

    Example:
        ```py
        >>> results = json.load(open("examples/results/2026-11-25-cpu-2core/eval-ddpm50.json"))  # a past evaluation
        >>> print(results_table(results["records"], group_keys=("method", "category")))
        | method | category | n | PSNR ↑ | SSIM ↑ | LPIPS ↓ | pose ±15° ↑ | s / sample |
        |---|---|---|---|---|---|---|---|
        | viewfusion | random_urdfs | 120 | 14.01 ± 0.33 | 0.6159 ± 0.0140 | 0.2648 ± 0.0107 | 28% ± 8 | 2.65 |
        | equal_weights | random_urdfs | 120 | 13.96 ± 0.33 | 0.6163 ± 0.0139 | 0.2665 ± 0.0109 | 26% ± 8 | 2.61 |
        | nearest_view | random_urdfs | 120 | 14.45 ± 0.53 | 0.6414 ± 0.0210 | 0.1762 ± 0.0155 | 38% ± 9 | 0.00 |
        | mean_view | random_urdfs | 120 | 14.48 ± 0.40 | 0.5827 ± 0.0184 | 0.2561 ± 0.0124 | 13% ± 6 | 0.00 |
        ```
    """
    groups = defaultdict(list)
    for record in records:
        groups[tuple(record[k] for k in group_keys)].append(record)
    lines = [
        "| "
        + " | ".join(group_keys)
        + f" | n | PSNR ↑ | SSIM ↑ | LPIPS ↓ | pose ±{POSE_TOLERANCE_DEGREES:g}° ↑ | s / sample |",
        "|" + "---|" * (len(group_keys) + 6),
    ]
    for key in sorted(groups, key=_sort_key):
        rows = groups[key]
        cells = [format_cell([r[m] for r in rows]) for m in ("psnr", "ssim", "lpips")]
        mean, half_width, _ = mean_and_ci([r["pose_within_15"] for r in rows])
        cells.append(f"{100 * mean:.0f}% ± {100 * half_width:.0f}")
        cells.append(f"{np.mean([r['seconds'] for r in rows]):.2f}")
        lines.append("| " + " | ".join(map(str, key)) + f" | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_comparisons(methods) -> list[tuple[str, str]]:
    """The (method, reference) pairs results.md compares sample by sample, among the `methods` scored: every
    method against the nearest input view, the learned weights against equal weights, posed against unposed.

    Example:
        ```py
        >>> paired_comparisons(["viewfusion", "equal_weights", "nearest_view"])
        [('viewfusion', 'nearest_view'), ('equal_weights', 'nearest_view'), ('viewfusion', 'equal_weights')]
        ```
    """
    methods = set(methods)
    pairs = [(m, "nearest_view") for m in sorted(methods, key=method_order) if m != "nearest_view"]
    pairs += [
        ("viewfusion", "equal_weights"),
        ("viewfusion_posed", "equal_weights_posed"),
        ("viewfusion_posed", "viewfusion"),
    ]
    return [pair for pair in dict.fromkeys(pairs) if pair[0] in methods and pair[1] in methods]


def _difference_row(label: str, num_views: int, differences: np.ndarray) -> str:
    mean, half_width, _ = mean_and_ci(differences)
    verdict = "lower" if mean + half_width < 0 else "higher" if mean - half_width > 0 else "no clear difference"
    return f"| {label} | {num_views} | {len(differences)} | {mean:+.4f} ± {half_width:.4f} | {verdict} |"


def paired_table(records) -> str:
    """Markdown: for each N, the mean ± 95% CI of per-sample LPIPS differences between methods scored on the
    same samples and noise (negative: the first method is closer to the truth).

    Example:
        ```py
        >>> results = json.load(open("examples/results/2026-11-25-cpu-2core/eval-ddpm50.json"))  # a past evaluation
        >>> print(paired_table([record for record in results["records"] if record["num_views"] in (1, 6)]))
        | comparison | N | n | LPIPS difference (paired) | first method's LPIPS is |
        |---|---|---|---|---|
        | viewfusion − equal_weights | 1 | 20 | +0.0000 ± 0.0000 | no clear difference |
        | viewfusion − nearest_view | 1 | 20 | +0.0440 ± 0.0290 | higher |
        | equal_weights − nearest_view | 1 | 20 | +0.0440 ± 0.0290 | higher |
        | mean_view − nearest_view | 1 | 20 | +0.0000 ± 0.0000 | no clear difference |
        | viewfusion − equal_weights | 6 | 20 | -0.0034 ± 0.0039 | no clear difference |
        | viewfusion − nearest_view | 6 | 20 | +0.1191 ± 0.0359 | higher |
        | equal_weights − nearest_view | 6 | 20 | +0.1225 ± 0.0347 | higher |
        | mean_view − nearest_view | 6 | 20 | +0.1448 ± 0.0248 | higher |
        ```
    """
    lines = ["| comparison | N | n | LPIPS difference (paired) | first method's LPIPS is |", "|---|---|---|---|---|"]
    methods = {r["method"] for r in records}
    rows = []
    for method, reference in paired_comparisons(methods):
        for num_views, differences in paired_differences(records, method, reference).items():
            rows.append(
                (
                    num_views,
                    method_order(method),
                    method_order(reference),
                    _difference_row(f"{method} − {reference}", num_views, differences),
                )
            )
    return "\n".join(lines + [row[-1] for row in sorted(rows)])


def comparison_to_run_table(records, other_records, methods=("viewfusion", "viewfusion_posed")) -> str:
    """Markdown: this run's per-sample LPIPS minus another run's, for each of `methods` both runs scored.

    Example:
        ```py
        >>> # Two viewfusion-eval runs on the same samples: DDPM and DDIM, both with 50 steps.
        >>> results = json.load(open("examples/results/2026-11-25-cpu-2core/eval-ddpm50.json"))
        >>> other = json.load(open("examples/results/2026-11-25-cpu-2core/eval-ddim50.json"))
        >>> print(comparison_to_run_table(results["records"], other["records"]))
        | method | N | n | LPIPS − other run's (paired) | this run's LPIPS is |
        |---|---|---|---|---|
        | viewfusion | 1 | 20 | -0.0560 ± 0.0179 | lower |
        | viewfusion | 2 | 20 | -0.0229 ± 0.0129 | lower |
        | viewfusion | 3 | 20 | -0.0522 ± 0.0217 | lower |
        | viewfusion | 4 | 20 | -0.0430 ± 0.0230 | lower |
        | viewfusion | 5 | 20 | -0.0340 ± 0.0148 | lower |
        | viewfusion | 6 | 20 | -0.0329 ± 0.0289 | lower |
        ```
    """
    lines = ["| method | N | n | LPIPS − other run's (paired) | this run's LPIPS is |", "|---|---|---|---|---|"]
    for method in methods:
        for num_views, differences in paired_differences(
            records, method, method, reference_records=other_records
        ).items():
            lines.append(_difference_row(method, num_views, differences))
    return "\n".join(lines)


def sampler_study_table(rows) -> str:
    """Mean ± 95% CI per sampler, and the paired LPIPS difference to the first row (DDPM over all steps): the
    same samples and seeds go through every sampler, so the paired interval is much narrower.

    Example:
        ```py
        >>> # A viewfusion-eval run with --sampler_study, on 8 samples with 6 input views:
        >>> results = json.load(open("examples/results/2026-11-25-cpu-2core/sampler-study-n6.json"))
        >>> rows = [row for row in results["sampler_study"] if row["steps"] in (2000, 50)]  # every sampler at 50 steps
        >>> print(sampler_study_table(rows))
        | scheduler | steps | s / sample | PSNR ↑ | SSIM ↑ | LPIPS ↓ | LPIPS − DDPM's (paired) |
        |---|---|---|---|---|---|---|
        | ddpm | 2000 | 212.36 | 13.6756 ± 1.5530 | 0.5922 ± 0.0634 | 0.2518 ± 0.0387 |  |
        | ddim | 50 | 5.17 | 14.0573 ± 1.9332 | 0.5902 ± 0.0745 | 0.2865 ± 0.0470 | +0.0347 ± 0.0152 |
        | ddpm | 50 | 4.93 | 14.4243 ± 2.0412 | 0.6091 ± 0.0824 | 0.2532 ± 0.0565 | +0.0014 ± 0.0323 |
        | dpmsolver-sde | 50 | 5.01 | 14.2186 ± 1.9993 | 0.6060 ± 0.0827 | 0.2553 ± 0.0604 | +0.0035 ± 0.0350 |
        | unipc | 50 | 5.21 | 13.8402 ± 1.9020 | 0.5756 ± 0.0747 | 0.3154 ± 0.0438 | +0.0636 ± 0.0118 |
        ```
    """
    lines = [
        "| scheduler | steps | s / sample | PSNR ↑ | SSIM ↑ | LPIPS ↓ | LPIPS − DDPM's (paired) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [f"{row[m][0]:.4f} ± {row[m][1]:.4f}" for m in ("psnr", "ssim", "lpips")]
        paired = paired_lpips_difference(row, rows[0])
        cells.append(f"{paired[0]:+.4f} ± {paired[1]:.4f}" if paired else "")
        lines.append(
            f"| {row['scheduler']} | {row['steps']} | {row['seconds_per_sample']:.2f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


HEADER_HEIGHT = 14


def grid_header(cell_size: int, num_slots: int, with_truth: bool = True) -> np.ndarray:
    """A white `(14, width, 3)` uint8 strip naming the columns of `comparison_row`: input 1..N, output, truth,
    weight 1..N (shortened to in / out / true / w when the cells are too narrow for the full words).

    Example:
        ```py
        >>> grid_header(64, num_slots=3).shape
        (14, 512, 3)
        ```
    """
    font = PIL.ImageFont.load_default()
    names = [("input {}", "in {}"), ("output", "out"), ("truth", "true"), ("weight {}", "w {}")]
    draw = PIL.ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
    fits = lambda text: draw.textlength(text, font=font) <= cell_size - 2
    long_words = all(fits(name.format(num_slots)) for name, _ in names)
    pick = lambda i: names[i][0] if long_words else names[i][1]
    labels = [pick(0).format(i + 1) for i in range(num_slots)] + [pick(1)] + ([pick(2)] if with_truth else [])
    labels += [pick(3).format(i + 1) for i in range(num_slots)]
    header = PIL.Image.new("RGB", (cell_size * len(labels), HEADER_HEIGHT), "white")
    draw = PIL.ImageDraw.Draw(header)
    for i, label in enumerate(labels):
        x = i * cell_size + (cell_size - draw.textlength(label, font=font)) / 2
        draw.text((x, 1), label, fill=(0, 0, 0), font=font)
    return np.asarray(header)


def labelled_grid(rows: list[np.ndarray], num_slots: int, with_truth: bool = True) -> np.ndarray:
    """Rows made by `comparison_row` stacked under a header row naming the columns.

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> inputs = [np.asarray(PIL.Image.open(f"examples/views/object025_az{a:03d}.png")) for a in (0, 90)]
        >>> truth = np.asarray(PIL.Image.open("examples/views/object025_az180.png"))
        >>> out = pipe(inputs, target_azimuth=180.0, num_inference_steps=2, output_type="np")  # 50 steps: a real view
        >>> row = comparison_row(inputs, out.images[0], truth, out.view_weights[0], num_slots=3)
        >>> grid = labelled_grid([row], num_slots=3)
        >>> grid.shape  # a 14-pixel header over one row of 3 inputs | output | truth | 3 weight maps
        (78, 512, 3)
        >>> PIL.Image.fromarray(grid).save("grid.png")
        ```
    """
    header = grid_header(rows[0].shape[0], num_slots, with_truth)
    if header.shape[1] != rows[0].shape[1]:
        raise ValueError(
            f"Rows are {rows[0].shape[1]} pixels wide, but {num_slots} slots make {header.shape[1]}; "
            "pass the `num_slots` the rows were made with."
        )
    return np.concatenate([header, *rows], axis=0)


def grid_rows(batch, images, view_weights, num_slots: int) -> list[tuple[int, np.ndarray]]:
    """`(num_views, comparison row)` for each sample of an `EvalBatch`: inputs | output | truth | weights.

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> from viewfusion_diffusers.evaluation import EvalBatch, EvalMethod
        >>> from viewfusion_diffusers.evaluation.samples import sample_pipeline
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(1, 3), num_objects=1))
        >>> images, weights = sample_pipeline(pipe, batch, [0, 1], EvalMethod("viewfusion"), num_inference_steps=2)
        >>> rows = grid_rows(batch, images, weights, num_slots=3)
        >>> [(num_views, row.shape) for num_views, row in rows]  # inputs | output | truth | weights, 64 pixels each
        [(1, (64, 512, 3)), (3, (64, 512, 3))]
        ```
    """
    as_hwc = lambda image: image.permute(1, 2, 0).cpu().numpy()
    return [
        (
            sample.num_views,
            comparison_row(
                [as_hwc(v) for v in batch.input_views[i]],
                as_hwc(images[i]),
                as_hwc(batch.targets[i]),
                view_weights[i].cpu().numpy(),
                num_slots,
            ),
        )
        for i, sample in enumerate(batch.samples)
    ]


def results_markdown(results: dict, compare_to: dict | None = None) -> str:
    """The text of results.md: the tables per method and N, the paired comparisons, per category, and the
    sampler study and the comparison to another run when there are ones.

    Example:
        ```py
        >>> markdown = results_markdown(json.load(open("examples/results/2026-11-25-cpu-2core/eval-ddpm50.json")))
        >>> print("\\n".join(line for line in markdown.splitlines() if line.startswith("#")))  # its sections
        # Evaluation of `pipelines/viewfusion-pybullet-64`
        ## Paired differences (same samples and noise)
        ## Per category (all numbers of views)
        ```
    """
    records, config = results["records"], results["config"]
    mode = "posed and unposed (the same samples and noise)" if config.get("posed") else "unposed"
    markdown = [
        f"# Evaluation of `{results['pipeline']['id']}`",
        "",
        f"Data `{config['data_dir']}`, split `{config['split']}`, {results['num_samples']} samples, "
        f"seed {config['seed']}, sampler {config['scheduler']} with {config['num_inference_steps']} steps, {mode}. "
        f"Mean ± 95% confidence interval. Pose ±{POSE_TOLERANCE_DEGREES:g}°: how often the true view the output "
        f"looks most like (LPIPS) is within {POSE_TOLERANCE_DEGREES:g}° of the requested azimuth.",
        "",
        results_table(records),
        "",
        "## Paired differences (same samples and noise)",
        "",
        "Per-sample LPIPS of the first method minus the second's; `lower` when the whole interval is below zero.",
        "",
        paired_table(records),
        "",
        "## Per category (all numbers of views)",
        "",
        results_table(records, group_keys=("method", "category")),
    ]
    if compare_to is not None:
        markdown += [
            "",
            f"## Against `{compare_to['pipeline']['id']}` (paired, same samples and noise)",
            "",
            f"Other run's weights sha256: `{compare_to['pipeline']['sha256']}`.",
            "",
            comparison_to_run_table(records, compare_to["records"]),
        ]
    if results.get("sampler_study"):
        markdown += ["", "## Sampler study", "", sampler_study_table(results["sampler_study"])]
    markdown += ["", f"Pipeline weights sha256: `{results['pipeline']['sha256']}`", ""]
    return "\n".join(markdown)


def write_results(
    results: dict,
    grids: dict[str, list[tuple[int, np.ndarray]]],
    output_dir,
    num_slots: int,
    max_rows: int = 8,
    compare_to: dict | None = None,
) -> None:
    """results.json, results.md and per method and N a labelled grid `grid_{N}_views[_posed].png`, each
    written atomically.

    Example:
        ```py
        >>> results = json.load(open("examples/results/2026-11-25-cpu-2core/eval-ddpm50.json"))  # a past evaluation
        >>> write_results(results, {}, "eval/ddpm50", num_slots=6)  # its results.json and results.md again; no grids
        >>> sorted(os.listdir("eval/ddpm50"))
        ['results.json', 'results.md']
        ```
    """
    os.makedirs(output_dir, exist_ok=True)
    with atomic_write(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with atomic_write(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(results_markdown(results, compare_to))
    for method, rows in grids.items():
        suffix = method[len("viewfusion") :]  # "" or "_posed"
        by_views = defaultdict(list)
        for num_views, row in rows:
            by_views[num_views].append(row)
        for num_views, view_rows in sorted(by_views.items()):
            grid = labelled_grid(view_rows[:max_rows], num_slots)
            save_image(grid, os.path.join(output_dir, f"grid_{num_views}_views{suffix}.png"))
