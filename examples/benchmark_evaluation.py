"""Where an evaluation's time goes: seconds per sample for sampling each method and for scoring, per U-Net layout.

    python examples/benchmark_evaluation.py --data_dir data/pybullet-64 --categories named random_urdfs

Runs what `viewfusion eval --posed --methods viewfusion viewfusion_posed` runs, on `--num_objects` test objects
at N = `--num_views`, in one batch: the pipeline in each mode (its own seed per sample, so every layout draws the
same noise), then the scoring (PSNR, SSIM, LPIPS and pose accuracy against all 24 views, baselines included),
once with the U-Net in NCHW and once in NHWC (`channels_last`, the evaluation's default). Prints seconds per
sample, the largest LPIPS difference between the layouts (float rounding only), and what the lineage's
evaluation (`training/evaluate_lineage.py`: 20 objects x 3 N x 2 modes per dataset) would take at that rate.
`--output` writes the rows as JSON.
"""

import argparse
import json
import os
import time

import torch

from viewfusion_diffusers import ViewFusionPipeline
from viewfusion_diffusers.constants import DEFAULT_PIPELINE
from viewfusion_diffusers.data import NMRDataset, make_eval_samples
from viewfusion_diffusers.evaluation import baseline_predictions
from viewfusion_diffusers.evaluation.methods import EvalMethod
from viewfusion_diffusers.evaluation.runner import is_posed_pipeline
from viewfusion_diffusers.evaluation.samples import EvalBatch, sample_pipeline
from viewfusion_diffusers.evaluation.scoring import score_predictions
from viewfusion_diffusers.file_utils import atomic_write
from viewfusion_diffusers.metrics import LPIPS


LINEAGE_SAMPLES_PER_DATASET = 20 * 3  # objects x N, in each of the two modes


def time_layout(pipeline, batch, seeds, methods, lpips, num_inference_steps) -> dict:
    """Seconds per sample of each method's sampling and of the scoring, and the scored records."""
    seconds, predictions = {}, {}
    for method in methods:
        start = time.perf_counter()
        predictions[method.name], _ = sample_pipeline(pipeline, batch, seeds, method, num_inference_steps)
        seconds[method.name] = (time.perf_counter() - start) / len(seeds)
    predictions.update(baseline_predictions(batch))
    start = time.perf_counter()
    records = score_predictions(batch, predictions, lpips)
    seconds["scoring"] = (time.perf_counter() - start) / len(seeds)
    return {"seconds_per_sample": seconds, "records": records}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="The pipeline to evaluate.")
    parser.add_argument("--data_dir", required=True, help="A rendered or NMR dataset with a test split.")
    parser.add_argument("--categories", nargs="*", default=None, help="Only these category folders.")
    parser.add_argument("--num_objects", type=int, default=4, help="Test objects (one batch of objects x N).")
    parser.add_argument("--num_views", type=int, nargs="+", default=[1, 3, 6], help="Numbers of input views.")
    parser.add_argument("--num_inference_steps", type=int, default=50, help="DDPM steps, as the evaluation.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads.")
    parser.add_argument("--output", default=None, help="Write the rows as JSON here.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = NMRDataset(args.data_dir, split="test", categories=args.categories)
    samples = make_eval_samples(dataset, num_views=tuple(args.num_views), num_objects=args.num_objects)
    batch = EvalBatch.load(dataset, samples)
    seeds = list(range(len(samples)))
    lpips = LPIPS.from_pretrained().eval()
    pipeline = ViewFusionPipeline.from_pretrained(args.pipeline)
    pipeline.set_progress_bar_config(disable=True)
    methods = [EvalMethod("viewfusion")]
    if is_posed_pipeline(pipeline):
        methods.append(EvalMethod("viewfusion_posed", posed=True))

    layouts = {}
    for layout, memory_format in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        pipeline.unet.to(memory_format=memory_format)
        layouts[layout] = time_layout(pipeline, batch, seeds, methods, lpips, args.num_inference_steps)

    lpips_of = lambda records: [r["lpips"] for r in records]
    max_difference = max(
        abs(a - b) for a, b in zip(lpips_of(layouts["nchw"]["records"]), lpips_of(layouts["channels_last"]["records"]))
    )
    rows = []
    for layout, result in layouts.items():
        seconds = result["seconds_per_sample"]
        sampling = sum(seconds[m.name] for m in methods)
        rows.append(
            {
                "layout": layout,
                **{f"{name}_seconds": round(value, 3) for name, value in seconds.items()},
                "scoring_share": round(seconds["scoring"] / (sampling + seconds["scoring"]), 4),
                "lineage_minutes_per_dataset": round(
                    LINEAGE_SAMPLES_PER_DATASET * (sampling + seconds["scoring"]) / 60, 1
                ),
            }
        )
    print(
        f"Seconds per sample, {len(samples)} samples (N = {args.num_views}) in one batch, "
        f"{args.num_inference_steps} DDPM steps, {args.threads} threads, torch {torch.__version__}"
    )
    names = [m.name for m in methods] + ["scoring"]
    print("| layout | " + " | ".join(names) + " | scoring share | lineage eval, minutes per dataset |")
    print("|---" * (len(names) + 3) + "|")
    for row in rows:
        cells = [f"{row[f'{name}_seconds']:.2f}" for name in names]
        print(
            f"| {row['layout']} | "
            + " | ".join(cells)
            + f" | {100 * row['scoring_share']:.1f}% | {row['lineage_minutes_per_dataset']} |"
        )
    speedup = rows[0]["lineage_minutes_per_dataset"] / max(rows[1]["lineage_minutes_per_dataset"], 1e-9)
    print(f"channels_last: {speedup:.2f}x; largest LPIPS difference between the layouts {max_difference:.1e}")
    if args.output:
        with atomic_write(args.output, "w") as f:
            json.dump({"rows": rows, "max_lpips_difference": max_difference, "config": vars(args)}, f, indent=1)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
