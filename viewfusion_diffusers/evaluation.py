"""`viewfusion-eval`: PSNR / SSIM / LPIPS-VGG per number of input views, with baselines and the ablation.

    viewfusion-eval --pipeline pipelines/viewfusion-pybullet-64 --data_dir data/pybullet-64 --output_dir eval

The evaluation set (objects, target view, input views for each N) depends only on the dataset, the split
and the seed, so tables from different pipelines line up. Every method is scored on the same samples:

- `viewfusion`: the pipeline with its learned fusion weights (the paper's method);
- `equal_weights`: the same pipeline and noise with `weighting=False` (the paper's ablation);
- `nearest_view`: the input view whose true azimuth is closest to the target's (an oracle: it uses poses);
- `mean_view`: the pixel average of the input views.

Under `accelerate launch` the samples are split between processes and the results gathered, so N GPUs
evaluate N times faster; every sample is seeded by its own index, so the numbers do not depend on how the
work is split.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import PartialState
from PIL import Image
from tqdm.auto import tqdm

from .data import NMRDataset, make_eval_samples
from .images import comparison_row
from .metrics import LPIPS, psnr, ssim
from .training_utils import cpu_distributed
from .pipeline import SCHEDULERS, ViewFusionPipeline, scheduler_from_name

METHODS = ("viewfusion", "dropped_views", "equal_weights", "nearest_view", "mean_view")
SAMPLER_STUDY_STEPS = (10, 20, 50, 100, 250)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="viewfusion-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", required=True, help="A ViewFusion pipeline folder or Hub repo id.")
    parser.add_argument("--data_dir", required=True, help="A dataset in the NMR layout (real NMR or rendered).")
    parser.add_argument("--split", default="test", help="Which split list to evaluate (default: test).")
    parser.add_argument("--categories", nargs="*", default=None, help="Only these category folders.")
    parser.add_argument("--num_views", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], help="Numbers of input views.")
    parser.add_argument("--num_objects", type=int, default=None, help="Evaluate this many objects (default: all).")
    parser.add_argument("--scheduler", default="ddpm", choices=sorted(SCHEDULERS), help="Sampler (default: ddpm).")
    parser.add_argument("--num_inference_steps", type=int, default=50, help="Denoising steps.")
    parser.add_argument("--seed", type=int, default=0, help="Chooses the evaluation set and the sampling noise.")
    parser.add_argument("--batch_size", type=int, default=8, help="Samples per pipeline call.")
    parser.add_argument("--device", default=None, help="torch device (default: the accelerate process's device).")
    parser.add_argument("--lpips_weights", default=None, help="LPIPS safetensors (default: `viewfusion-lpips-weights`' output).")
    parser.add_argument("--drop_views_below", type=float, default=None,
                        help="Also score the pipeline with `drop_views_below` set to this (method `dropped_views`).")
    parser.add_argument("--num_grid_rows", type=int, default=8, help="Samples shown in each image grid.")
    parser.add_argument("--sampler_study", action="store_true",
                        help="Also compare DDPM at all training steps with fast samplers at few steps on a subset.")
    parser.add_argument("--sampler_study_schedulers", nargs="+", default=["ddpm", "ddim"], choices=sorted(SCHEDULERS),
                        help="Samplers in the study, each at every `--sampler_study_steps` (default: ddpm ddim).")
    parser.add_argument("--sampler_study_samples", type=int, default=8, help="Samples in the sampler study.")
    parser.add_argument("--sampler_study_steps", type=int, nargs="+", default=list(SAMPLER_STUDY_STEPS))
    parser.add_argument("--output_dir", required=True, help="Where results.json, results.md and the grids go.")
    return parser.parse_args(argv)


def write_atomically(path: str, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".tmp-", delete=False) as f:
        f.write(data)
    os.replace(f.name, path)


def pipeline_fingerprint(pipeline: ViewFusionPipeline) -> str:
    """sha256 of the U-Net's weights and config: which network made a table, whatever folder it came from."""
    digest = hashlib.sha256(json.dumps(dict(pipeline.unet.config), sort_keys=True, default=str).encode())
    for name, tensor in sorted(pipeline.unet.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


def nearest_input_view(input_indices, target_index: int, num_azimuths: int = 24) -> int:
    """The input view index whose azimuth is circularly closest to the target's (ties: the earlier input)."""
    return min(input_indices, key=lambda k: circular_view_distance(k, target_index, num_azimuths))


def circular_view_distance(a: int, b: int, num_azimuths: int = 24) -> int:
    """How many 15-degree steps apart two azimuth indices are, the short way round (0 .. 12)."""
    return min((a - b) % num_azimuths, (b - a) % num_azimuths)


def closest_view_errors(images: torch.Tensor, object_views: list[torch.Tensor], target_indices, lpips: LPIPS) -> list[int]:
    """For each image, the azimuth error in degrees of the object's ground-truth view it looks most like (LPIPS).

    A model that ignores the requested azimuth still scores well on PSNR when objects look alike from all sides;
    this tells whether it drew the object from the right side.
    """
    errors = []
    with torch.no_grad():
        for image, views, target_index in zip(images, object_views, target_indices):
            views = views.to(image.device)
            distances = lpips(image[None].expand(len(views), -1, -1, -1), views)
            errors.append(15 * circular_view_distance(int(distances.argmin()), target_index, len(views)))
    return errors


def score(prediction: torch.Tensor, target: torch.Tensor, lpips: LPIPS) -> dict[str, np.ndarray]:
    """PSNR, SSIM and LPIPS of `(B, 3, H, W)` images in [0, 1]."""
    with torch.no_grad():
        return {
            "psnr": psnr(prediction, target).cpu().numpy(),
            "ssim": ssim(prediction, target).cpu().numpy(),
            "lpips": lpips(prediction, target).cpu().numpy(),
        }


def evaluate_batch(pipeline, dataset, samples, seeds, args, lpips, device, weighted_methods=("viewfusion", "equal_weights")):
    """Score every method on a batch of evaluation samples; returns per-sample records and grid rows.

    `seeds` holds one sampling seed per sample, so a sample's result does not depend on its batch.
    """
    resolution = None
    object_views, inputs, targets, azimuths = [], [], [], []
    for sample in samples:
        views = dataset.load_views(sample.object_index).float() / 255.0
        resolution = views.shape[-1]
        object_views.append(views)
        inputs.append(views[list(sample.input_indices)])
        targets.append(views[sample.target_index])
        azimuths.append(15.0 * sample.target_index)
    targets = torch.stack(targets).to(device)
    predictions, weights, seconds = {}, {}, {}

    for method in weighted_methods:
        start = time.perf_counter()
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        out = pipeline(
            [v.to(device) for v in inputs], azimuths, num_inference_steps=args.num_inference_steps,
            generator=generators, weighting=(method != "equal_weights"), output_type="pt",
            drop_views_below=args.drop_views_below if method == "dropped_views" else None,
        )
        images = out.images.to(device)
        if images.shape[-1] != resolution:
            images = F.interpolate(images, size=resolution, mode="bicubic", antialias=True).clamp(0, 1)
        predictions[method], weights[method] = images, out.view_weights
        seconds[method] = (time.perf_counter() - start) / len(samples)
    nearest = [inputs[i][list(s.input_indices).index(nearest_input_view(s.input_indices, s.target_index))]
               for i, s in enumerate(samples)]
    predictions["nearest_view"] = torch.stack(nearest).to(device)
    predictions["mean_view"] = torch.stack([v.mean(0) for v in inputs]).to(device)
    seconds["nearest_view"] = seconds["mean_view"] = 0.0

    records = []
    for method, images in predictions.items():
        metrics = score(images, targets, lpips)
        errors = closest_view_errors(images, object_views, [s.target_index for s in samples], lpips)
        for i, sample in enumerate(samples):
            records.append({
                "method": method, "num_views": sample.num_views, "category": sample.category,
                "object_id": sample.object_id, "target_index": sample.target_index,
                "input_indices": list(sample.input_indices), "seconds": seconds[method],
                **{name: float(values[i]) for name, values in metrics.items()},
                "closest_view_error": errors[i], "pose_within_15": float(errors[i] <= 15),
            })
    as_hwc = lambda image: image.permute(1, 2, 0).cpu().numpy()
    grid_rows = [
        (sample.num_views, comparison_row([as_hwc(v) for v in inputs[i]], as_hwc(predictions["viewfusion"][i]),
                                          as_hwc(targets[i]), weights["viewfusion"][i].cpu().numpy(), max(args.num_views)))
        for i, sample in enumerate(samples)
    ] if "viewfusion" in predictions else []
    return records, grid_rows


def mean_and_ci(values) -> tuple[float, float, int]:
    """Mean, 95% confidence half-width (normal approximation) over the finite values, and how many were infinite."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("inf"), 0.0, int(values.size)
    half_width = 1.96 * finite.std(ddof=1) / math.sqrt(finite.size) if finite.size > 1 else 0.0
    return float(finite.mean()), float(half_width), int(values.size - finite.size)


def format_cell(values) -> str:
    mean, half_width, num_infinite = mean_and_ci(values)
    if math.isinf(mean):
        return "inf (identical)"
    cell = f"{mean:.4f} ± {half_width:.4f}" if abs(mean) < 10 else f"{mean:.2f} ± {half_width:.2f}"
    return cell + (f" ({num_infinite} identical, excluded)" if num_infinite else "")


def results_table(records, group_keys=("method", "num_views")) -> str:
    """A markdown table: one row per group, PSNR / SSIM / LPIPS as mean ± 95% CI, and how often the ground-truth
    view closest to the output (LPIPS) is within 15 degrees of the requested azimuth."""
    groups = defaultdict(list)
    for record in records:
        groups[tuple(record[k] for k in group_keys)].append(record)
    order = {m: i for i, m in enumerate(METHODS)}
    keys = sorted(groups, key=lambda k: tuple(order.get(v, v) if isinstance(v, str) else v for v in k))
    lines = [
        "| " + " | ".join(group_keys) + " | n | PSNR ↑ | SSIM ↑ | LPIPS ↓ | pose ±15° ↑ | s / sample |",
        "|" + "---|" * (len(group_keys) + 6),
    ]
    for key in keys:
        rows = groups[key]
        cells = [format_cell([r[m] for r in rows]) for m in ("psnr", "ssim", "lpips")]
        if all("pose_within_15" in r for r in rows):
            mean, half_width, _ = mean_and_ci([r["pose_within_15"] for r in rows])
            cells.append(f"{100 * mean:.0f}% ± {100 * half_width:.0f}")
        else:
            cells.append("")
        cells.append(f"{np.mean([r['seconds'] for r in rows]):.2f}" if all("seconds" in r for r in rows) else "")
        lines.append("| " + " | ".join(map(str, key)) + f" | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_evaluation(args) -> dict:
    """Evaluate `args.pipeline` on `args.data_dir`; writes and returns the results (on the main process)."""
    state = PartialState(cpu=cpu_distributed())
    device = torch.device(args.device) if args.device else state.device
    dataset = NMRDataset(args.data_dir, split=args.split, categories=args.categories)
    samples = make_eval_samples(dataset, num_views=tuple(args.num_views), num_objects=args.num_objects, seed=args.seed)
    pipeline = ViewFusionPipeline.from_pretrained(args.pipeline).to(device)
    pipeline.scheduler = scheduler_from_name(args.scheduler, pipeline.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    lpips = LPIPS.from_pretrained(args.lpips_weights).to(device).eval()
    seeds = [args.seed * 1_000_003 + i for i in range(len(samples))]

    records, grid_rows = [], []
    indices = list(range(len(samples)))
    with state.split_between_processes(indices) as shard:
        bar = tqdm(range(0, len(shard), args.batch_size), desc="Evaluating", disable=not state.is_local_main_process)
        for start in bar:
            batch = shard[start : start + args.batch_size]
            batch_records, batch_rows = evaluate_batch(
                pipeline, dataset, [samples[i] for i in batch], [seeds[i] for i in batch], args, lpips, device,
                weighted_methods=("viewfusion", "equal_weights") + (("dropped_views",) if args.drop_views_below else ()),
            )
            records += batch_records
            grid_rows += batch_rows
    records = gather(records, state)
    grid_rows = gather(grid_rows, state)

    study = run_sampler_study(pipeline, dataset, samples, seeds, args, lpips, device, state) if args.sampler_study else None
    if not state.is_main_process:
        return {}
    results = {
        "config": {k: v for k, v in vars(args).items()},
        "pipeline": {"id": str(args.pipeline), "sha256": pipeline_fingerprint(pipeline)},
        "num_samples": len(samples),
        "records": sorted(records, key=lambda r: (METHODS.index(r["method"]), r["num_views"], r["category"], r["object_id"])),
        "sampler_study": study,
    }
    write_results(results, grid_rows, args.output_dir, max_rows=args.num_grid_rows)
    return results


def gather(items: list, state: PartialState) -> list:
    if state.num_processes == 1:
        return items
    from accelerate.utils import gather_object

    return gather_object(items)


def run_sampler_study(pipeline, dataset, samples, seeds, args, lpips, device, state):
    """DDPM over all training steps (the paper's sampler) against fast samplers at few steps, on a fixed subset."""
    subset = samples[: args.sampler_study_samples]
    train_steps = pipeline.scheduler.config.num_train_timesteps
    fast = [(name, s) for name in args.sampler_study_schedulers for s in args.sampler_study_steps if (name, s) != ("ddpm", train_steps)]
    settings = [("ddpm", train_steps)] + fast
    original = pipeline.scheduler
    rows = []
    for name, steps in tqdm(settings, desc="Sampler study", disable=not state.is_local_main_process):
        pipeline.scheduler = scheduler_from_name(name, original.config)
        study_args = argparse.Namespace(**{**vars(args), "num_inference_steps": steps})
        records = []
        with state.split_between_processes(list(range(len(subset)))) as shard:
            for start in range(0, len(shard), args.batch_size):
                batch = shard[start : start + args.batch_size]
                batch_records, _ = evaluate_batch(
                    pipeline, dataset, [subset[i] for i in batch], [seeds[i] for i in batch], study_args, lpips,
                    device, weighted_methods=("viewfusion",),
                )
                records += [r for r in batch_records if r["method"] == "viewfusion"]
        records = gather(records, state)
        rows.append({
            "scheduler": name, "steps": steps, "num_views": sorted({sample.num_views for sample in subset}),
            "seconds_per_sample": float(np.mean([r["seconds"] for r in records])),
            **{m: mean_and_ci([r[m] for r in records])[:2] for m in ("psnr", "ssim", "lpips")},
            "lpips_per_sample": [r["lpips"] for r in records],
        })
    pipeline.scheduler = original
    return rows


def paired_lpips_difference(row: dict, reference: dict) -> tuple[float, float] | None:
    """Mean and 95% CI half-width of a sampler study row's per-sample LPIPS minus the reference row's, or None
    for the reference itself and for rows not scored on the same samples."""
    per_sample = np.asarray(row.get("lpips_per_sample", []))
    reference_per_sample = np.asarray(reference.get("lpips_per_sample", []))
    if row is reference or reference_per_sample.size == 0 or per_sample.shape != reference_per_sample.shape:
        return None
    mean, half_width, _ = mean_and_ci(per_sample - reference_per_sample)
    return mean, half_width


def sampler_study_table(rows) -> str:
    """Mean ± 95% CI per sampler, and the paired LPIPS difference to the first row (DDPM over all steps): the
    same samples and seeds go through every sampler, so the paired interval is much narrower."""
    lines = ["| scheduler | steps | s / sample | PSNR ↑ | SSIM ↑ | LPIPS ↓ | LPIPS − DDPM's (paired) |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [f"{row[m][0]:.4f} ± {row[m][1]:.4f}" for m in ("psnr", "ssim", "lpips")]
        paired = paired_lpips_difference(row, rows[0])
        cells.append(f"{paired[0]:+.4f} ± {paired[1]:.4f}" if paired else "")
        lines.append(f"| {row['scheduler']} | {row['steps']} | {row['seconds_per_sample']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(results: dict, grid_rows, output_dir: str, max_rows: int = 8) -> None:
    """results.json, results.md and one image grid per number of views, each written atomically."""
    os.makedirs(output_dir, exist_ok=True)
    write_atomically(os.path.join(output_dir, "results.json"), json.dumps(results, indent=1, default=str).encode())
    records = results["records"]
    config = results["config"]
    markdown = [
        f"# Evaluation of `{results['pipeline']['id']}`",
        "",
        f"Data `{config['data_dir']}`, split `{config['split']}`, {results['num_samples']} samples, "
        f"seed {config['seed']}, sampler {config['scheduler']} with {config['num_inference_steps']} steps. "
        "Mean ± 95% confidence interval.",
        "",
        results_table(records),
        "",
        "## Per category (all numbers of views)",
        "",
        results_table(records, group_keys=("method", "category")),
    ]
    if results.get("sampler_study"):
        markdown += ["", "## Sampler study", "", sampler_study_table(results["sampler_study"])]
    markdown += ["", f"Pipeline weights sha256: `{results['pipeline']['sha256']}`", ""]
    write_atomically(os.path.join(output_dir, "results.md"), "\n".join(markdown).encode())
    by_views = defaultdict(list)
    for num_views, row in grid_rows:
        by_views[num_views].append(row)
    for num_views, rows in by_views.items():
        path = os.path.join(output_dir, f"grid_{num_views}_views.png")
        image = Image.fromarray(np.concatenate(rows[:max_rows], axis=0))
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".tmp-", suffix=".png", delete=False) as f:
            image.save(f, format="PNG")
        os.replace(f.name, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        results = run_evaluation(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"viewfusion-eval: error: {error}", file=sys.stderr)
        return 2
    if results:
        print(results_table(results["records"]))
        if results["sampler_study"]:
            print(sampler_study_table(results["sampler_study"]))
        print(f"Wrote {os.path.join(args.output_dir, 'results.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
