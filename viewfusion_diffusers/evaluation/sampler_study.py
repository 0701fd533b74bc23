"""DDPM over all training steps (the paper's sampler) against fast samplers at few steps, on the same samples."""

import time

import numpy as np
from tqdm.auto import tqdm

from ..distributed import gather
from ..schedulers import scheduler_from_name
from .methods import EvalMethod, SamplerStudySettings
from .samples import EvalBatch, sample_pipeline
from .scoring import score_predictions
from .statistics import mean_and_ci


def run_sampler_study(
    pipeline, dataset, samples, seeds, lpips, device, state, settings: SamplerStudySettings, batch_size: int = 8
) -> list[dict]:
    """One row per (sampler, steps), DDPM at the training schedule's full length first: seconds per sample,
    PSNR / SSIM / LPIPS as (mean, 95% CI half-width), and the per-sample LPIPS for paired differences.

    Every setting samples the first `settings.num_samples` samples with the same seeds; the pipeline's scheduler
    is restored afterwards.

    Example:
        ```py
        >>> from accelerate import PartialState
        >>> from diffusers import DDPMScheduler
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> from viewfusion_diffusers.metrics import LPIPS
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> # Full DDPM runs all 2,000 training steps; a 4-step schedule keeps this example short.
        >>> pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config, num_train_timesteps=4)
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> samples = make_eval_samples(dataset, num_views=(1,))
        >>> settings = SamplerStudySettings(schedulers=("ddim",), steps=(2,), num_samples=1)
        >>> rows = run_sampler_study(pipe, dataset, samples, seeds=[0, 1], lpips=LPIPS.from_pretrained(), device="cpu",
        ...                          state=PartialState(), settings=settings)
        >>> [(row["scheduler"], row["steps"]) for row in rows]  # full DDPM first
        [('ddpm', 4), ('ddim', 2)]
        >>> sorted(rows[0])
        ['lpips', 'lpips_per_sample', 'num_views', 'psnr', 'scheduler', 'seconds_per_sample', 'ssim', 'steps']
        ```
    """
    subset = samples[: settings.num_samples]
    train_steps = pipeline.scheduler.config.num_train_timesteps
    fast = [(name, s) for name in settings.schedulers for s in settings.steps if (name, s) != ("ddpm", train_steps)]
    original = pipeline.scheduler
    rows = []
    try:
        for name, steps in tqdm(
            [("ddpm", train_steps)] + fast, desc="Sampler study", disable=not state.is_local_main_process
        ):
            pipeline.scheduler = scheduler_from_name(name, original.config)
            records = []
            with state.split_between_processes(list(range(len(subset)))) as shard:
                for start in range(0, len(shard), batch_size):
                    indices = shard[start : start + batch_size]
                    batch = EvalBatch.load(dataset, [subset[i] for i in indices], device)
                    began = time.perf_counter()
                    images, _ = sample_pipeline(
                        pipeline, batch, [seeds[i] for i in indices], EvalMethod("viewfusion"), steps
                    )
                    seconds = (time.perf_counter() - began) / len(indices)
                    records += score_predictions(batch, {"viewfusion": images}, lpips, {"viewfusion": seconds})
            records = gather(records, state)
            rows.append(
                {
                    "scheduler": name,
                    "steps": steps,
                    "num_views": sorted({sample.num_views for sample in subset}),
                    "seconds_per_sample": float(np.mean([r["seconds"] for r in records])),
                    **{m: mean_and_ci([r[m] for r in records])[:2] for m in ("psnr", "ssim", "lpips")},
                    "lpips_per_sample": [r["lpips"] for r in records],
                }
            )
    finally:
        pipeline.scheduler = original
    return rows
