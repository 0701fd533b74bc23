#!/usr/bin/env python
"""Fused validation loss of trained U-Nets, posed and unposed, on the same 128 held-out samples.

    python training/validation_loss.py --data_dir data/pybullet-64 --split val \
        --models pipelines/viewfusion-pybullet-64 runs/a runs/a/checkpoint-500/unet --output_json val.json

Every model sees the same views, noise and timesteps, so the differences are paired sample for sample. A model
is a pipeline folder (its U-Net and schedule) or a U-Net folder (the schedule from `--scheduler_from`).
"""

import argparse
import json
import os

import torch

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from viewfusion_diffusers.data import NMRDataset
from viewfusion_diffusers.data.samplers import load_views_in_memory
from viewfusion_diffusers.evaluation.statistics import mean_and_ci
from viewfusion_diffusers.file_utils import atomic_write
from viewfusion_diffusers.training_utils import validation_losses


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Fused validation loss of ViewFusion U-Nets on the same samples.")
    parser.add_argument("--data_dir", required=True, help="A dataset in the NMR layout.")
    parser.add_argument("--split", default="val", help="The split to draw the samples from (default: val).")
    parser.add_argument("--categories", nargs="*", default=None, help="Only these category folders (default: all).")
    parser.add_argument("--models", nargs="+", required=True, help="Pipeline folders or U-Net folders to score.")
    parser.add_argument(
        "--scheduler_from",
        default=None,
        help="A pipeline whose schedule U-Net folders are scored with (default: the first pipeline among --models).",
    )
    parser.add_argument("--num_batches", type=int, default=16, help="Batches to score (default 16).")
    parser.add_argument("--batch_size", type=int, default=8, help="Samples per batch (default 8: 128 samples).")
    parser.add_argument("--max_views", type=int, default=6, help="Input views per sample are drawn from 1..max_views.")
    parser.add_argument("--seed", type=int, default=123, help="Chooses the samples, noise and timesteps.")
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads (default 1).")
    parser.add_argument("--output_json", default=None, help="Also write the per-batch losses here.")
    return parser.parse_args(argv)


def load_model(path: str, scheduler_from: str | None):
    """A folder's U-Net and the schedule it is scored with."""
    if os.path.isfile(os.path.join(path, "model_index.json")):
        pipeline = ViewFusionPipeline.from_pretrained(path)
        return pipeline.unet.float(), pipeline.scheduler
    if scheduler_from is None:
        raise ValueError(f"{path} is a U-Net folder; pass --scheduler_from PIPELINE for its schedule.")
    return ViewFusionUNet2DModel.from_pretrained(path).float(), ViewFusionPipeline.from_pretrained(
        scheduler_from
    ).scheduler


def main(args):
    torch.set_num_threads(args.num_threads)
    scheduler_from = args.scheduler_from or next(
        (m for m in args.models if os.path.isfile(os.path.join(m, "model_index.json"))), None
    )
    objects = NMRDataset(args.data_dir, split=args.split, categories=args.categories)
    results = {"config": {k: v for k, v in vars(args).items() if k != "output_json"}, "models": {}}
    views = None
    for path in args.models:
        unet, scheduler = load_model(path, scheduler_from)
        if views is None or views.shape[-1] != unet.config.sample_size:
            views = load_views_in_memory(objects, unet.config.sample_size, show_progress=False)
        losses = validation_losses(
            unet,
            scheduler,
            views,
            num_batches=args.num_batches,
            batch_size=args.batch_size,
            max_views=args.max_views,
            seed=args.seed,
        )
        results["models"][path] = {"prediction_type": scheduler.config.prediction_type, **losses}
        difference, half_width, _ = mean_and_ci([p - u for p, u in zip(losses["posed"], losses["unposed"])])
        print(
            f"{path}: posed {mean_and_ci(losses['posed'])[0]:.5f} unposed {mean_and_ci(losses['unposed'])[0]:.5f} "
            f"posed-unposed {difference:+.5f} ± {half_width:.5f} ({scheduler.config.prediction_type})",
            flush=True,
        )
    if args.output_json:
        with atomic_write(args.output_json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(parse_args())
