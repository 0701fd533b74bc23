"""Validation loss of U-Nets, posed and unposed, on the same batches (views, noise, timesteps) of the val split.

python val_loss.py PIPELINE_FOR_THE_SCHEDULE DATA_DIR UNET_FOLDER [UNET_FOLDER ...]
"""
import sys

import torch

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from viewfusion_diffusers.data import NMRDataset
from viewfusion_diffusers.data.samplers import InMemoryViewSampler, draw_step_noise, load_views_in_memory, step_seed
from viewfusion_diffusers.evaluation.statistics import mean_and_ci
from viewfusion_diffusers.training_utils import fused_loss

torch.set_num_threads(1)
pipe = ViewFusionPipeline.from_pretrained(sys.argv[1])
resolution, num_train_timesteps = pipe.unet.config.sample_size, pipe.scheduler.config.num_train_timesteps
views = load_views_in_memory(NMRDataset(sys.argv[2], split="val", categories=["named", "random_urdfs"]), resolution,
                             show_progress=False)
sampler = InMemoryViewSampler(views, 8, max_views=6, seed=123)
for path in sys.argv[3:]:
    unet = ViewFusionUNet2DModel.from_pretrained(path).eval()
    losses = {True: [], False: []}
    for step in range(16):
        batch = sampler.batch(step)
        for posed in (True, False):
            noise = draw_step_noise(8, (3, resolution, resolution), num_train_timesteps, 0.0 if posed else 1.0, step_seed(123, step, 0, stream=2))
            with torch.no_grad():
                losses[posed].append(fused_loss(unet, pipe.scheduler, {**batch, **noise}, resolution).item())
    difference, half_width, _ = mean_and_ci([p - u for p, u in zip(losses[True], losses[False])])
    print(f"{path}: posed {mean_and_ci(losses[True])[0]:.5f} unposed {mean_and_ci(losses[False])[0]:.5f} "
          f"posed-unposed {difference:+.5f} ± {half_width:.5f}")
