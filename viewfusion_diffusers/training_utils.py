"""The training objective and checkpoint pieces, shared by the training script and the benchmarks."""

import os
from dataclasses import replace

import torch
import torch.nn.functional as F

from .fusion import predict_fused_noise
from .image_processor import ViewProcessor


def fused_loss(
    unet, noise_scheduler, batch, resolution: int, pad_pairs_to: int | None = None, snr_gamma: float | None = None
):
    """The paper's loss: MSE between the true noise (or v, or the clean target) and the fused prediction of each
    sample's views.

    Deterministic given the batch: the step's random draws travel in it (see `draw_step_noise`), so the loss
    of a step is the same in a resumed run, and in micro-batches of it.

    Args:
        unet: a [`ViewFusionUNet2DModel`] (possibly wrapped for distributed training or compiled).
        noise_scheduler: the training noise schedule; its `prediction_type` (`epsilon`, `v_prediction` or
            `sample`) picks the objective.
        batch ([`TrainingBatch`]): the views (as made by `collate_views` or `InMemoryViewSampler`) and the
            step's draws `noise`, `timesteps`, `posed` and `noise_level_fraction`. For a U-Net with
            `relative_pose`, `posed` False gives that sample's views without their azimuths (pose dropout, so one
            model learns the posed and the unposed task). For a U-Net conditioned on the noise level, as in the
            authors' training, the level's `alpha_bar` is drawn uniformly between those of timesteps `t - 1` and
            `t` at `noise_level_fraction` (so `timesteps` must be at least 1), not taken at `t`.
        resolution (`int`): the model's image size; views of another size are resized (with
            [`ViewProcessor.resize`], as for sampling).
        pad_pairs_to (`int`, *optional*): run the U-Net on this many pairs (see `pair_bucket`); the loss does
            not depend on it.
        snr_gamma (`float`, *optional*): weight each sample's MSE by min-SNR-gamma (see [`min_snr_weights`]);
            `None` is the plain mean.

    Example:
        ```py
        >>> import dataclasses
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> from viewfusion_diffusers.data.dataset import NMRDataset
        >>> from viewfusion_diffusers.data.samplers import InMemoryViewSampler, load_views_in_memory
        >>> from viewfusion_diffusers.data.samplers import draw_step_noise, step_seed

        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")  # fine-tune the shipped one
        >>> unet, scheduler = pipe.unet, pipe.scheduler  # a v-prediction schedule: the loss is the MSE of v
        >>> views = load_views_in_memory(NMRDataset("data/pybullet-64"), show_progress=False)
        >>> sampler = InMemoryViewSampler(views, batch_size=2, max_views=2)
        >>> draws = draw_step_noise(2, (3, 64, 64), scheduler.config.num_train_timesteps, 0.5, step_seed(0, 0))
        >>> batch = dataclasses.replace(sampler.batch(0), **draws)
        >>> loss = fused_loss(unet, scheduler, batch, 64)
        >>> loss.backward()
        >>> loss.shape, unet.conv_in.weight.grad.shape
        (torch.Size([]), torch.Size([32, 6, 3, 3]))
        >>> fused_loss(unet, scheduler, batch, 64, snr_gamma=5.0).backward()  # min-SNR-5 weighted
        ```
    """
    views, target = batch.input_views, batch.target
    device = target.device
    config = unwrap(unet).config
    if target.shape[-1] != resolution:
        views = ViewProcessor.resize(views, resolution, resolution, value_range=(-1, 1))
        target = ViewProcessor.resize(target, resolution, resolution, value_range=(-1, 1))
    if tuple(config.pixel_range) == (0.0, 1.0):  # the authors' network works on pixels in [0, 1]
        views, target = (views + 1) / 2, (target + 1) / 2
    # Copies from the host are queued without waiting for the device (nothing in the step synchronises).
    num_views = batch.num_views
    noise = batch.noise.to(device, non_blocking=True)
    if noise.shape != target.shape:
        raise ValueError(f"The batch's noise {tuple(noise.shape)} does not match its targets {tuple(target.shape)}.")
    timesteps = batch.timesteps.to(device, non_blocking=True)
    noise_level = None
    if config.conditioning == "noise_level":
        if bool((batch.timesteps < 1).any()):
            raise ValueError(
                "A U-Net conditioned on the noise level trains on timesteps from 1 (draw them with min_timestep=1)."
            )
        alphas_cumprod = noise_scheduler.alphas_cumprod.to(device)
        fraction = batch.noise_level_fraction.to(device, non_blocking=True)
        noise_level = alphas_cumprod[timesteps - 1] + fraction * (
            alphas_cumprod[timesteps] - alphas_cumprod[timesteps - 1]
        )
        alpha_bar = noise_level.view(-1, 1, 1, 1)
        noisy_target = alpha_bar.sqrt() * target + (1 - alpha_bar).sqrt() * noise
    else:
        noisy_target = noise_scheduler.add_noise(target, noise, timesteps)

    view_azimuth = None
    if config.relative_pose:
        # Made on the host, where float64 is available everywhere (Apple's MPS has none), reduced to [0, 360)
        # there, and sent as float32: the views' azimuths are multiples of 15 degrees, exact in float32.
        posed = batch.posed.cpu().repeat_interleave(num_views.cpu())
        azimuths = batch.input_azimuths.cpu().double() % 360
        view_azimuth = torch.where(posed, azimuths, float("nan")).float().to(device, non_blocking=True)
    fused, _ = predict_fused_noise(
        unet,
        views,
        noisy_target,
        timesteps,
        batch.target_azimuth.to(device, non_blocking=True),
        num_views,
        view_azimuth=view_azimuth,
        noise_level=noise_level,
        pad_pairs_to=pad_pairs_to,
    )

    prediction_type = noise_scheduler.config.prediction_type
    if prediction_type == "epsilon":
        objective = noise
    elif prediction_type == "v_prediction" and noise_level is not None:
        objective = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * target
    elif prediction_type == "v_prediction":
        objective = noise_scheduler.get_velocity(target, noise, timesteps)
    elif prediction_type == "sample":
        objective = target
    else:
        raise ValueError(f"Unknown prediction_type {prediction_type!r}; use epsilon, v_prediction or sample.")
    if snr_gamma is None:
        return F.mse_loss(fused.float(), objective.float())
    per_sample = (fused.float() - objective.float()).pow(2).mean(dim=(1, 2, 3))
    return (min_snr_weights(noise_scheduler, timesteps, snr_gamma, noise_level) * per_sample).mean()


def min_snr_weights(
    noise_scheduler, timesteps: torch.Tensor, snr_gamma: float, noise_level: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample loss weights `(B,)` of min-SNR-gamma (Hang et al. 2023), for the scheduler's prediction type.

    The SNR is that of `timesteps` in the schedule, or `alpha_bar / (1 - alpha_bar)` of `noise_level` when given
    (a U-Net conditioned on a continuous noise level).

    The method weights the MSE of the clean image by `min(SNR, gamma)`: low-noise steps, whose high SNR would
    dominate the gradient, are capped. The MSE of epsilon is SNR times that of the clean image, and the MSE of v
    is SNR + 1 times it, so the same weighting of those targets is `min(SNR, gamma) / SNR` and
    `min(SNR, gamma) / (SNR + 1)`.

    Example:
        ```py
        >>> from viewfusion_diffusers import default_scheduler
        >>> weights = min_snr_weights(default_scheduler("v_prediction"), torch.tensor([0, 999, 1999]), 5.0)
        >>> weights  # 5 / (SNR + 1) at the low-noise end, SNR / (SNR + 1) where SNR < 5
        tensor([5.0664e-06, 8.1784e-02, 4.3860e-05])
        ```
    """
    from diffusers.training_utils import compute_snr

    if noise_level is None:
        snr = compute_snr(noise_scheduler, timesteps).float()
    else:
        snr = (noise_level / (1 - noise_level)).float()
    capped = torch.clamp(snr, max=snr_gamma)
    prediction_type = noise_scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return capped / snr
    if prediction_type == "v_prediction":
        return capped / (snr + 1)
    if prediction_type == "sample":
        return capped
    raise ValueError(f"Unknown prediction_type {prediction_type!r}; use epsilon, v_prediction or sample.")


def load_ema_state(ema, folder, model_cls, device) -> None:
    """Load an EMA saved with `EMAModel.save_pretrained` into `ema`, its weights moved to `device`.

    `EMAModel.from_pretrained` reads the weights onto the CPU; left there, the first `ema.step` of a resumed
    GPU run fails with tensors on two devices. The shadow weights keep the dtype of the saved model.

    Example:
        ```py
        >>> from diffusers.training_utils import EMAModel
        >>> from viewfusion_diffusers import ViewFusionUNet2DModel
        >>> unet = ViewFusionUNet2DModel.from_preset("small", sample_size=16)
        >>> ema_unet = EMAModel(unet.parameters(), model_cls=ViewFusionUNet2DModel, model_config=unet.config)
        >>> for _ in range(3):  # three optimizer steps
        ...     ema_unet.step(unet.parameters())
        >>> ema_unet.save_pretrained("outputs/checkpoint-500/unet_ema")  # what a checkpoint holds

        >>> device = "cuda" if torch.cuda.is_available() else "cpu"  # the training script's `accelerator.device`
        >>> resumed = EMAModel(unet.parameters(), model_cls=ViewFusionUNet2DModel, model_config=unet.config)
        >>> load_ema_state(resumed, "outputs/checkpoint-500/unet_ema", ViewFusionUNet2DModel, device)
        >>> resumed.optimization_step, resumed.shadow_params[0].device.type == device
        (3, True)
        ```
    """
    from diffusers.training_utils import EMAModel

    if not os.path.isdir(folder):
        raise ValueError(
            f"{folder} holds no EMA weights; resume without --use_ema, or from a checkpoint made with it."
        )
    loaded = EMAModel.from_pretrained(folder, model_cls)
    ema.load_state_dict(loaded.state_dict())
    ema.to(device)


def unwrap(model):
    """The model inside a distributed / compiled wrapper (for reading its config).

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionUNet2DModel
        >>> unet = ViewFusionUNet2DModel.from_preset("small")
        >>> unwrap(torch.compile(unet)) is unet
        True
        ```
    """
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


def bf16_is_fast(device=None) -> bool:
    """Whether bf16 autocast runs on native bf16 units on `device` (by default the one training would use: the
    GPU if there is one, else the CPU): a CUDA GPU with bf16 units (Ampere and newer), or a CPU with AVX-512 bf16
    or AMX (Intel Xeon since Cooper Lake and Sapphire Rapids, AMD since Zen 4). On one core of a CPU with AMX,
    `--mixed_precision bf16` trains the `small` U-Net at 2.1 times the samples per CPU-second of fp32, and a step
    on an AMD EPYC core with AVX-512 bf16 is 1.8 times faster (examples/results/2026-12-07-recipe-study); without
    such units bf16 is emulated and slower than fp32.

    Example:
        ```py
        >>> precision = "bf16" if bf16_is_fast() else "no"  # what training/continue_default.sh passes on
        >>> precision in ("bf16", "no")
        True
        ```
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        # Older GPUs (V100, T4) run bf16 too, emulated: that is slower, not faster.
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    # torch reads the CPU's features with these private helpers (they back its own CPU autocast tests); a build
    # without them answers False, the safe side: fp32. Every CPU with AMX tiles so far has AMX-BF16 too.
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


# Dense tensor-core peaks from the vendors' data sheets, in TFLOP/s: bf16/fp16, and TF32 for fp32 work.
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "fp32": 494.0},
    "H100": {"bf16": 989.0, "fp32": 494.0},
    "A100": {"bf16": 312.0, "fp32": 156.0},
    "L40S": {"bf16": 362.0, "fp32": 183.0},
    "L4": {"bf16": 121.0, "fp32": 60.0},
    "A10G": {"bf16": 70.0, "fp32": 35.0},
}


def device_peak_tflops(device, dtype: torch.dtype = torch.bfloat16) -> float | None:
    """The device's dense arithmetic peak for `dtype` in TFLOP/s, or None when it is not in `PEAK_TFLOPS` (e.g. a
    CPU): give it to the benchmarks with `--peak_tflops` then. fp16 counts as bf16; fp32 as TF32.

    Example:
        ```py
        >>> print(device_peak_tflops("cpu"))  # give the benchmarks --peak_tflops
        None
        >>> PEAK_TFLOPS["H200"]  # what a CUDA device named "NVIDIA H200" gets, for bf16 (and fp16) and fp32
        {'bf16': 989.0, 'fp32': 494.0}
        ```
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for model, peaks in PEAK_TFLOPS.items():
        if model in name:
            return peaks["fp32" if dtype == torch.float32 else "bf16"]
    return None


def count_flops(function) -> int:
    """The floating-point operations (multiply and add counted apart) of `function()`: matrix products and
    convolutions, forward and, if `function` calls it, backward, as `torch.utils.flop_counter` counts them.

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionUNet2DModel
        >>> unet = ViewFusionUNet2DModel.from_preset("small")
        >>> pairs = torch.randn(1, 6, 64, 64)  # one input view and the noisy target, concatenated
        >>> forward = count_flops(lambda: unet(pairs, timestep=10, target_azimuth=torch.tensor([90.0])))
        >>> training = count_flops(lambda: unet(pairs, 10, target_azimuth=torch.tensor([90.0])).noise.sum().backward())
        >>> round(forward / 1e9, 2), round(training / 1e9, 2)  # GFLOP per pair: forward; forward and backward
        (3.04, 9.1)
        ```
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


@torch.no_grad()
def validation_losses(
    unet,
    noise_scheduler,
    views: torch.Tensor,
    num_batches: int = 16,
    batch_size: int = 8,
    max_views: int = 6,
    seed: int = 123,
) -> dict[str, list[float]]:
    """The fused loss of `unet` on fixed batches of held-out views, posed and unposed: the same views, noise and
    timesteps for every U-Net given the same `views` and `seed`, so runs are compared sample for sample.

    The loss is the plain mean (no min-SNR weighting) in the scheduler's own prediction target, so it compares
    U-Nets of one prediction type.

    Args:
        unet: a [`ViewFusionUNet2DModel`]; one without pose layers scores the same both ways.
        noise_scheduler: the schedule it was trained with.
        views (`torch.Tensor`): `(objects, 24, 3, H, W)` uint8, from `load_views_in_memory` of the val split.
        num_batches (`int`), batch_size (`int`): `num_batches * batch_size` samples (default 128).
        max_views (`int`): input views per sample are drawn from 1..max_views.
        seed (`int`): chooses the samples, noise and timesteps.

    Returns:
        `{"posed": [...], "unposed": [...]}`, one mean loss per batch.

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> from viewfusion_diffusers.data.dataset import NMRDataset
        >>> from viewfusion_diffusers.data.samplers import load_views_in_memory
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> views = load_views_in_memory(NMRDataset("data/pybullet-64", split="val"), 64)  # 2 objects here
        >>> losses = validation_losses(pipe.unet, pipe.scheduler, views, num_batches=2, batch_size=2)
        >>> {mode: len(batch_losses) for mode, batch_losses in losses.items()}
        {'posed': 2, 'unposed': 2}
        ```
    """
    from .data.samplers import InMemoryViewSampler, draw_step_noise, step_seed

    resolution = views.shape[-1]
    sampler = InMemoryViewSampler(views, batch_size, max_views=max_views, seed=seed)
    num_train_timesteps = noise_scheduler.config.num_train_timesteps
    was_training = unet.training
    unet.eval()
    losses = {"posed": [], "unposed": []}
    for step in range(num_batches):
        batch = sampler.batch(step)
        for mode, pose_dropout in (("posed", 0.0), ("unposed", 1.0)):
            # The same seed for both modes: only the posed flags differ between them.
            noise = draw_step_noise(
                batch_size,
                (3, resolution, resolution),
                num_train_timesteps,
                pose_dropout,
                step_seed(seed, step, 0, stream=2),
            )
            losses[mode].append(fused_loss(unet, noise_scheduler, replace(batch, **noise), resolution).item())
    unet.train(was_training)
    return losses
