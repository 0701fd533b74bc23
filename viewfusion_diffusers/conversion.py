"""The authors' checkpoints (`best_model_all.pt`, bronemos/view-fusion) as ordinary ViewFusion pipelines.

Their network is the SR3 / Palette U-Net: every block of it has a counterpart in diffusers' `UNet2DModel`, so the
conversion is a renaming of weights (and the split of each attention's fused `qkv` projection), not a new model
class. What differs is configuration, saved in the U-Net's config: the network is conditioned on the noise level
and the target azimuth in radians (`conditioning="noise_level"`), its residual blocks add the embedding without an
activation before it (`resnet_skip_time_act=True`), and its pixels are in [0, 1] (`pixel_range=(0, 1)`).

Example:
    ```py
    >>> from viewfusion_diffusers import ViewFusionPipeline

    >>> # built with `convert_original_checkpoint`; the paper's model is "bronemos/view-fusion/best_model_all.pt"
    >>> pipe = ViewFusionPipeline.from_single_file("tests/data/original-viewfusion/tiny/best_model_all.pt",
    ...                                            "tests/data/original-viewfusion/tiny/config.yaml")
    >>> pipe.save_pretrained("outputs/viewfusion-tiny")
    ```
"""

import logging
import os
import pickle
import zipfile
from pathlib import Path

import torch
import yaml
from diffusers import DDPMScheduler

from .unet import ViewFusionUNet2DModel


logger = logging.getLogger(__name__)

# The configuration the authors published with their NMR model (`logs/pretrained/config.yaml` of their repository):
# the paper's network and its training schedule.
AUTHORS_CONFIG = {
    "model": {
        "denoise_net_params": {
            "image_size": 64,
            "in_channel": 6,
            "out_channel": 6,
            "inner_channel": 64,
            "res_blocks": 3,
            "attn_res": [16],
            "channel_mults": [1, 2, 3, 5],
        },
        "view_fusion_params": {
            "beta_schedule": {
                "train": {"schedule": "linear", "num_timesteps": 2000, "linear_start": 1e-6, "linear_end": 1e-2},
                "test": {"schedule": "linear", "num_timesteps": 1000, "linear_start": 1e-4, "linear_end": 0.09},
            }
        },
    }
}
# Where the authors publish the weights of the paper's NMR model.
AUTHORS_CHECKPOINT = "bronemos/view-fusion/best_model_all.pt"

# Buffers of their `ViewFusion` module: the noise schedule, recomputed by the scheduler, not weights.
SCHEDULE_BUFFERS = (
    "gammas",
    "sqrt_recip_gammas",
    "sqrt_recipm1_gammas",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)
NETWORK_PREFIX = "denoise_fn."
# Their beta schedules that diffusers' schedulers compute the same way.
BETA_SCHEDULES = {"linear": "linear", "quad": "scaled_linear"}


class OriginalCheckpointError(ValueError):
    """A file that is not a checkpoint of the authors' format, or does not match its configuration."""


def load_original_config(path: str | os.PathLike | None = None) -> dict:
    """The authors' YAML config as a dict; `None` gives the configuration they published with the paper's model.

    Example:
        ```py
        >>> load_original_config()["model"]["denoise_net_params"]["channel_mults"]
        [1, 2, 3, 5]
        ```
    """
    if path is None:
        return AUTHORS_CONFIG
    try:
        with open(path) as file:
            config = yaml.safe_load(file)
    except OSError as error:
        raise OriginalCheckpointError(f"Cannot read the config {os.fspath(path)!r}: {error.strerror}.") from None
    except yaml.YAMLError as error:
        raise OriginalCheckpointError(f"{os.fspath(path)} is not valid YAML ({error}).") from None
    try:
        config["model"]["denoise_net_params"]
        config["model"]["view_fusion_params"]["beta_schedule"]["train"]
    except (KeyError, TypeError):
        raise OriginalCheckpointError(
            f"{os.fspath(path)} is not a config of the authors' code: it needs model.denoise_net_params and "
            "model.view_fusion_params.beta_schedule.train."
        ) from None
    return config


def load_original_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The network's state dict (the keys under `denoise_fn.` and the schedule buffers) of an authors' checkpoint.

    The file is a pickle: it is read with `torch.load(..., weights_only=True)` only, which admits tensors, numbers,
    strings and plain containers and never runs code from the file. A checkpoint saved from a
    `DistributedDataParallel` wrapper (keys starting with `module.`) is read without the prefix.

    Example:
        ```py
        >>> state_dict = load_original_checkpoint("tests/data/original-viewfusion/tiny/best_model_all.pt")  # small
        >>> state_dict["denoise_fn.downs.0.weight"].shape  # the paper's model: torch.Size([64, 6, 3, 3])
        torch.Size([16, 6, 3, 3])
        ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint at {path!r} ({os.path.abspath(path)}).")
    with open(path, "rb") as file:
        starts_like_zip = file.read(2) == b"PK"
    is_zip = zipfile.is_zipfile(path)
    if starts_like_zip and not is_zip:
        raise OriginalCheckpointError(
            f"{path} is truncated or damaged (its zip archive is incomplete); download it again."
        )
    if not is_zip:
        raise OriginalCheckpointError(
            f"{path} is not a PyTorch checkpoint (torch.save writes a zip archive and this file is not one); "
            "pass the authors' best_model_all.pt."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise OriginalCheckpointError(
            f"{path} holds Python objects other than tensors and numbers, and is only ever read with "
            f"torch.load(weights_only=True): re-save its state dicts alone ({str(error).splitlines()[-1][:200]})."
        ) from None
    except (RuntimeError, EOFError, KeyError, OSError) as error:
        raise OriginalCheckpointError(
            f"{path} is damaged ({type(error).__name__}: {str(error)[:200]}); download it again."
        ) from None
    if not isinstance(checkpoint, dict):
        raise OriginalCheckpointError(
            f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict with a 'model' entry."
        )
    state_dict = checkpoint.get("model", checkpoint)
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise OriginalCheckpointError(f"{path}'s 'model' entry is not a state dict (a dict of tensors).")
    if state_dict and all(key.startswith("module.") for key in state_dict):
        logger.warning(
            "%s was saved from a DistributedDataParallel wrapper: reading its keys without 'module.'.", path
        )
        state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    if not any(key.startswith(NETWORK_PREFIX) for key in state_dict):
        found = ", ".join(sorted(state_dict)[:4]) or "nothing"
        raise OriginalCheckpointError(
            f"{path} is not a checkpoint of the authors' ViewFusion: no weights under '{NETWORK_PREFIX}' (found "
            f"{found}, ...)."
        )
    return state_dict


def unet_config_from_original(config: dict) -> dict:
    """The `ViewFusionUNet2DModel` config of the network an authors' config describes.

    Levels are `image_size / 2**i`; a level listed in `attn_res` gets attention blocks, down and up; each level has
    `res_blocks` residual blocks down and one more up, as in diffusers.

    Example:
        ```py
        >>> unet_config_from_original(load_original_config())["block_out_channels"]
        [64, 128, 192, 320]
        ```
    """
    params = config["model"]["denoise_net_params"]
    try:
        inner, multipliers, image_size = (
            int(params["inner_channel"]),
            list(params["channel_mults"]),
            int(params["image_size"]),
        )
        res_blocks = int(params["res_blocks"])
    except KeyError as error:
        raise OriginalCheckpointError(f"The config's model.denoise_net_params has no {error.args[0]!r}.") from None
    if params.get("out_channel", 6) != 6 or params.get("in_channel", 6) != 6:
        raise OriginalCheckpointError(
            f"The config's network has in_channel={params.get('in_channel')}, "
            f"out_channel={params.get('out_channel')}; "
            "only the weighted model (6 in, 6 out) converts: the 3-channel one is the unweighted ablation."
        )
    attention_resolutions = set(params.get("attn_res") or [])
    resolutions = [image_size // 2**level for level in range(len(multipliers))]
    return {
        "sample_size": image_size,
        "in_channels": 6,
        "out_channels": 6,
        "block_out_channels": [inner * m for m in multipliers],
        "layers_per_block": res_blocks,
        "down_block_types": ["AttnDownBlock2D" if r in attention_resolutions else "DownBlock2D" for r in resolutions],
        "up_block_types": [
            "AttnUpBlock2D" if r in attention_resolutions else "UpBlock2D" for r in reversed(resolutions)
        ],
        "attention_head_dim": None,  # one head per attention, as theirs
        "norm_num_groups": int(params.get("norm_groups", 32)),  # their code's default
        "dropout": float(params.get("dropout", 0.0)),
        "time_embedding_dim": inner,
        "conditioning": "noise_level",
        "resnet_skip_time_act": True,
        "attention_qkv_bias": False,
        "pixel_range": (0.0, 1.0),
    }


def scheduler_from_original(config: dict, phase: str = "train") -> DDPMScheduler:
    """A `DDPMScheduler` with the config's beta schedule (`train` by default), clipping x0 to [-1, 1] as they do.

    Example:
        ```py
        >>> scheduler_from_original(load_original_config()).config.num_train_timesteps
        2000
        ```
    """
    schedule = config["model"]["view_fusion_params"]["beta_schedule"][phase]
    if schedule.get("schedule") not in BETA_SCHEDULES:
        raise OriginalCheckpointError(
            f"The config's {phase} schedule is {schedule.get('schedule')!r}; the converter supports "
            f"{sorted(BETA_SCHEDULES)}."
        )
    return DDPMScheduler(
        num_train_timesteps=int(schedule["num_timesteps"]),
        beta_start=float(schedule.get("linear_start", 1e-6)),
        beta_end=float(schedule.get("linear_end", 1e-2)),
        beta_schedule=BETA_SCHEDULES[schedule["schedule"]],
        prediction_type="epsilon",
        clip_sample=True,
        clip_sample_range=1.0,
        variance_type="fixed_small",
    )


def original_weight_names(unet_config: dict) -> dict[str, str]:
    """Each module of the authors' network (under `denoise_fn.`) and the `ViewFusionUNet2DModel` module it becomes.

    Attentions map to their `group_norm` and `to_out.0`; their fused `qkv` convolution is split by
    [`convert_original_state_dict`] into `to_q`, `to_k` and `to_v`.

    Example:
        ```py
        >>> names = original_weight_names(unet_config_from_original(load_original_config()))
        >>> names["downs.1.res_block.block1.block.3"]
        'down_blocks.0.resnets.0.conv1'
        ```
    """
    names = {
        "noise_level_mlp.0": "time_embedding.linear_1",
        "noise_level_mlp.2": "time_embedding.linear_2",
        "downs.0": "conv_in",
        "final_conv.block.0": "conv_norm_out",
        "final_conv.block.3": "conv_out",
    }

    def resnet(original: str, ours: str) -> None:
        names.update(
            {
                f"{original}.block1.block.0": f"{ours}.norm1",
                f"{original}.block1.block.3": f"{ours}.conv1",
                f"{original}.noise_func.noise_func.0": f"{ours}.time_emb_proj",
                f"{original}.block2.block.0": f"{ours}.norm2",
                f"{original}.block2.block.3": f"{ours}.conv2",
                f"{original}.res_conv": f"{ours}.conv_shortcut",
            }
        )

    def attention(original: str, ours: str) -> None:
        names.update(
            {
                f"{original}.norm": f"{ours}.group_norm",
                f"{original}.out": f"{ours}.to_out.0",
                f"{original}.qkv": f"{ours}.qkv",
            }
        )

    # Their `downs` and `ups` are flat lists: the levels' blocks in order, with a resampling layer between levels.
    levels, per_level = len(unet_config["block_out_channels"]), unet_config["layers_per_block"]
    index = 1  # downs.0 is the input convolution
    for level, block_type in enumerate(unet_config["down_block_types"]):
        for block in range(per_level):
            resnet(f"downs.{index}.res_block", f"down_blocks.{level}.resnets.{block}")
            if block_type.startswith("Attn"):
                attention(f"downs.{index}.attn", f"down_blocks.{level}.attentions.{block}")
            index += 1
        if level < levels - 1:
            names[f"downs.{index}.conv"] = f"down_blocks.{level}.downsamplers.0.conv"
            index += 1
    resnet("mid.0.res_block", "mid_block.resnets.0")
    attention("mid.0.attn", "mid_block.attentions.0")
    resnet("mid.1.res_block", "mid_block.resnets.1")
    index = 0
    for level, block_type in enumerate(unet_config["up_block_types"]):
        for block in range(per_level + 1):
            resnet(f"ups.{index}.res_block", f"up_blocks.{level}.resnets.{block}")
            if block_type.startswith("Attn"):
                attention(f"ups.{index}.attn", f"up_blocks.{level}.attentions.{block}")
            index += 1
        if level < levels - 1:
            names[f"ups.{index}.conv"] = f"up_blocks.{level}.upsamplers.0.conv"
            index += 1
    return names


def convert_original_state_dict(
    state_dict: dict[str, torch.Tensor], unet: ViewFusionUNet2DModel
) -> dict[str, torch.Tensor]:
    """The authors' weights renamed and reshaped into `unet`'s state dict; every mismatch raises, naming the fix.

    Example:
        ```py
        >>> config = load_original_config("tests/data/original-viewfusion/tiny/config.yaml")  # by default, the paper's
        >>> unet = ViewFusionUNet2DModel(**unet_config_from_original(config))
        >>> state_dict = load_original_checkpoint("tests/data/original-viewfusion/tiny/best_model_all.pt")
        >>> unet.load_state_dict(convert_original_state_dict(state_dict, unet))
        <All keys matched successfully>
        ```
    """
    names = original_weight_names(unet.config)
    expected = unet.state_dict()
    converted, unexpected = {}, []
    for key, tensor in state_dict.items():
        if key in SCHEDULE_BUFFERS:
            continue
        module, _, parameter = key.removeprefix(NETWORK_PREFIX).rpartition(".")
        if not key.startswith(NETWORK_PREFIX) or module not in names:
            unexpected.append(key)
            continue
        ours = names[module]
        if ours.endswith(".qkv"):
            # Their attention projects q, k and v with one bias-free 1x1 convolution: its three thirds, in order.
            for name, part in zip(("to_q", "to_k", "to_v"), tensor.flatten(1).chunk(3)):
                converted[f"{ours.removesuffix('qkv')}{name}.weight"] = part
        elif ours.endswith(".to_out.0") and parameter == "weight":
            converted[f"{ours}.{parameter}"] = tensor.flatten(1)  # a 1x1 convolution is a linear map
        else:
            converted[f"{ours}.{parameter}"] = tensor
    missing = [key for key in expected if key not in converted]
    hint = "pass the config.yaml the checkpoint was trained with (--config / config_file)."
    if unexpected or missing:
        original_missing = sorted({k for k, v in names.items() if any(c.startswith(v + ".") for c in missing)})
        raise OriginalCheckpointError(
            f"The checkpoint does not match the configuration: {len(unexpected)} unexpected weights "
            f"({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''}) and {len(original_missing)} "
            "missing "
            f"({', '.join(NETWORK_PREFIX + k for k in original_missing[:3])}"
            f"{', ...' if len(original_missing) > 3 else ''}); {hint}"
        )
    wrong = [
        (k, tuple(v.shape), tuple(expected[k].shape)) for k, v in converted.items() if v.shape != expected[k].shape
    ]
    if wrong:
        key, got, want = wrong[0]
        raise OriginalCheckpointError(
            f"The checkpoint does not match the configuration's shapes: {len(wrong)} weights differ, e.g. {key} is "
            f"{got} in the checkpoint and {want} in the configured network; {hint}"
        )
    return {key: value.to(expected[key].dtype) for key, value in converted.items()}


def check_schedule(state_dict: dict[str, torch.Tensor], config: dict, path: str) -> None:
    """Warn when the checkpoint's noise-schedule buffers match neither schedule of the config (likely the wrong one).

    The converted network depends on the noise level alone, so the buffers are only a check on the config.

    Example:
        ```py
        >>> checkpoint = "tests/data/original-viewfusion/tiny/best_model_all.pt"
        >>> config = load_original_config("tests/data/original-viewfusion/tiny/config.yaml")
        >>> check_schedule(load_original_checkpoint(checkpoint), config, checkpoint)
        ```
    """
    gammas = state_dict.get("gammas")
    if gammas is None:
        return
    for phase in config["model"]["view_fusion_params"]["beta_schedule"]:
        try:
            alphas_cumprod = scheduler_from_original(config, phase).alphas_cumprod
        except OriginalCheckpointError:
            continue
        if alphas_cumprod.shape == gammas.shape and torch.allclose(alphas_cumprod, gammas.float(), atol=1e-4, rtol=0):
            return
    logger.warning(
        "%s was saved with a %d-step noise schedule that matches no schedule of the config: is it the "
        "config the checkpoint was trained with?",
        path,
        gammas.numel(),
    )


def convert_original_checkpoint(
    checkpoint_path: str | os.PathLike, config_path: str | os.PathLike | None = None
) -> dict:
    """The components of a ViewFusion pipeline (`unet`, `scheduler`) holding the authors' network and schedule.

    [`ViewFusionPipeline.from_single_file`] builds the pipeline from them.

    Args:
        checkpoint_path: the authors' `best_model_all.pt` (or any checkpoint of their format).
        config_path: their YAML config; `None` uses the configuration published with the paper's model.

    Example:
        ```py
        >>> components = convert_original_checkpoint("tests/data/original-viewfusion/tiny/best_model_all.pt",
        ...                                          "tests/data/original-viewfusion/tiny/config.yaml")
        >>> components["unet"].config.conditioning, components["scheduler"].config.num_train_timesteps
        ('noise_level', 50)
        ```
    """
    config = load_original_config(config_path)
    state_dict = load_original_checkpoint(checkpoint_path)
    unet_config = unet_config_from_original(config)
    scheduler = scheduler_from_original(config)
    check_schedule(state_dict, config, os.fspath(checkpoint_path))
    try:
        unet = ViewFusionUNet2DModel(**unet_config)
    except ValueError as error:  # e.g. widths that the config's norm groups do not divide
        raise OriginalCheckpointError(f"The config describes a network that cannot be built: {error}") from None
    unet.load_state_dict(convert_original_state_dict(state_dict, unet))
    return {"unet": unet.eval(), "scheduler": scheduler}


def model_card_body(checkpoint: str, config: str | None, num_parameters: int) -> str:
    """The model card text of a converted checkpoint: where the weights come from, their licence, the paper's numbers.

    Example:
        ```py
        >>> "LPIPS" in model_card_body("bronemos/view-fusion/best_model_all.pt", None, 33_900_000)
        True
        ```
    """
    paper_config = "the one they published with the paper's model (`logs/pretrained/config.yaml` of their repository)"
    return f"""\
## Where these weights come from

The network and weights of the authors of ViewFusion (Spiegl, Perin, Deny, Ilin, [arXiv 2402.02906](https://arxiv.org/abs/2402.02906)),
converted from their checkpoint `{Path(checkpoint).name}` (`{checkpoint}`) with `viewfusion convert`, configuration
{f"`{config}`" if config else paper_config}.
Their code and weights are released under the MIT licence (github.com/bronemos/view-fusion); this folder keeps it.

- Network: their U-Net ({num_parameters / 1e6:.1f}M parameters), conditioned on the noise level and the target
  azimuth in radians; views and images in [0, 1]. The conversion renames their weights into diffusers'
  `UNet2DModel` blocks and computes what their code computes (tested against outputs of their code to 1e-4).
- Scheduler: their training schedule as a `DDPMScheduler` (x0 clipped to [-1, 1], as in their sampler). The network
  depends on the noise level alone, so any diffusers scheduler and number of steps can sample it; the authors
  sampled ancestrally over every step of the schedule.
- Training data: NMR (ShapeNet renders of 13 categories, 64x64, 24 azimuths 15 degrees apart at elevation 30); the
  target azimuth is absolute, in NMR's frame (view `k` at `15 k` degrees).

## What the authors report (NMR test set, 64x64)

LPIPS (VGG) 0.033 with a variable number of input views (1 to 6) and 0.053 with a single view, sampled with
their ancestral sampler over all steps; the paper's tables give PSNR and SSIM beside them. Trained for 710k steps
on 4 V100 GPUs (about 6.5 days). These are the authors' figures, not measured here.

## Citation

```bibtex
@misc{{spiegl2024viewfusion,
  title={{ViewFusion: Learning Composable Diffusion Models for Novel View Synthesis}},
  author={{Bernard Spiegl and Andrea Perin and St{{\\'e}}phane Deny and Alexander Ilin}},
  year={{2024}}, eprint={{2402.02906}}, archivePrefix={{arXiv}}, primaryClass={{cs.CV}}
}}
```
"""
