"""Validation loss of U-Nets, posed and unposed, on the same batches (views, noise, timesteps) of the val split.

python val_loss.py PIPELINE_FOR_THE_SCHEDULE DATA_DIR UNET_FOLDER [UNET_FOLDER ...]
"""
import sys

import torch

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from viewfusion_diffusers.data import NMRDataset
from viewfusion_diffusers.data.samplers import InMemoryViewSampler, draw_step_noise, load_views_in_memory, step_seed
from viewfusion_diffusers.training_utils import fused_loss

torch.set_num_threads(1)
pipe = ViewFusionPipeline.from_pretrained(sys.argv[1])
views = load_views_in_memory(NMRDataset(sys.argv[2], split="val", categories=["named", "random_urdfs"]), 64, show_progress=False)
sampler = InMemoryViewSampler(views, 8, max_views=6, seed=123)
for path in sys.argv[3:]:
    unet = ViewFusionUNet2DModel.from_pretrained(path).eval()
    losses = {True: [], False: []}
    for step in range(16):
        batch = sampler.batch(step)
        for posed in (True, False):
            noise = draw_step_noise(8, (3, 64, 64), 2000, 0.0 if posed else 1.0, step_seed(123, step, 0, stream=2))
            with torch.no_grad():
                losses[posed].append(fused_loss(unet, pipe.scheduler, {**batch, **noise}, 64).item())
    p, u = torch.tensor(losses[True]), torch.tensor(losses[False])
    d = p - u
    print(f"{path}: posed {p.mean():.5f} unposed {u.mean():.5f} posed-unposed {d.mean():+.5f} ± {1.96 * d.std() / len(d) ** 0.5:.5f}")
