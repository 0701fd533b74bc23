"""The training objective, shared by the training script and the benchmarks."""

import numpy as np
import torch
import torch.nn.functional as F

from .distributed import cpu_distributed  # noqa: F401 (the training script imports it from here)
from .fusion import predict_fused_noise


def sample_generators(seed: int, epoch: int, indices) -> list[torch.Generator]:
    """One generator per sample, seeded by (seed, epoch, dataset index): a sample's noise and timestep do not
    depend on its batch, process or accumulation step, and nothing but the step count is needed to resume."""
    generators = []
    for index in indices:
        state = np.random.SeedSequence([seed, epoch, int(index)]).generate_state(2, dtype=np.uint32)
        generators.append(torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1])))
    return generators


def fused_loss(unet, noise_scheduler, batch, generators, resolution, pose_dropout: float = 0.0):
    """The paper's loss: MSE between the true noise (or v) and the fused prediction of each sample's views.

    Args:
        unet: a [`ViewFusionUNet2DModel`] (possibly wrapped for distributed training).
        noise_scheduler: the training noise schedule; its `prediction_type` picks the objective.
        batch (`dict`): as made by `collate_views`: `input_views` `(sum N, 3, H, W)`, `input_azimuths` `(sum N,)`,
            `num_views` `(B,)`, `target` `(B, 3, H, W)`, `target_azimuth` `(B,)` in degrees.
        generators (`list[torch.Generator]`): one per sample, for its noise, timestep and pose dropout.
        resolution (`int`): the model's image size; views of another size are resized.
        pose_dropout (`float`, defaults to 0): for a U-Net with `relative_pose`, the probability that a sample's
            input views are given without their azimuths, so one model learns both the posed and the unposed task.

    Example:
        ```py
        >>> loss = fused_loss(unet, default_scheduler(), batch, sample_generators(0, 0, batch["indices"]), 64)
        >>> loss.backward()
        ```
    """
    views, target = batch["input_views"], batch["target"]
    if target.shape[-1] != resolution:
        views = F.interpolate(views, size=resolution, mode="bilinear", antialias=True)
        target = F.interpolate(target, size=resolution, mode="bilinear", antialias=True)
    num_views = batch["num_views"].to(target.device)
    num_train_timesteps = noise_scheduler.config.num_train_timesteps
    noise = torch.stack([torch.randn(target.shape[1:], generator=g) for g in generators]).to(target.device)
    timesteps = torch.cat([torch.randint(0, num_train_timesteps, (1,), generator=g) for g in generators])
    timesteps = timesteps.to(target.device)
    noisy_target = noise_scheduler.add_noise(target, noise, timesteps)

    view_azimuth = None
    if unwrap(unet).config.relative_pose:
        # Drawn after the noise and the timestep, so a sample's noise does not depend on the pose dropout.
        posed = torch.tensor([bool(torch.rand(1, generator=g) >= pose_dropout) for g in generators], device=target.device)
        view_azimuth = torch.where(posed.repeat_interleave(num_views), batch["input_azimuths"].to(target.device).double(), float("nan"))
    fused, _ = predict_fused_noise(unet, views, noisy_target, timesteps, batch["target_azimuth"], num_views,
                                   view_azimuth=view_azimuth)

    if noise_scheduler.config.prediction_type == "epsilon":
        objective = noise
    else:
        objective = noise_scheduler.get_velocity(target, noise, timesteps)
    return F.mse_loss(fused.float(), objective.float())


def unwrap(model):
    """The model inside a distributed / compiled wrapper (for reading its config)."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model
