"""`ViewFusionUNet2DModel`: diffusers' `UNet2DModel` conditioned on the target's pose, with a split output."""

from dataclasses import dataclass

import torch
from diffusers import ModelMixin, UNet2DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from diffusers.utils import BaseOutput
from torch import nn


# diffusers' pipeline loader finds how to load a component by looking its base classes up by name (`ModelMixin`,
# ...) in the module that `model_index.json` names for it, which for the U-Net is this one: so this module exports
# the base class the loader looks for, beside its own names.
__all__ = [
    "UNET_PRESETS",
    "AzimuthEmbedding",
    "ModelMixin",
    "PoseEmbedding",
    "ViewFusionUNet2DModel",
    "ViewFusionUNetOutput",
    "per_sample",
    "reduce_degrees",
]

# Named configurations. `paper` is the network of the ViewFusion paper (about 34M parameters); `small` is
# a 4.6M-parameter version that trains and samples at a useful speed on a laptop CPU.
UNET_PRESETS = {
    "paper": {
        "sample_size": 64,
        "block_out_channels": (64, 128, 192, 320),
        "layers_per_block": 3,
        "down_block_types": ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        "attention_head_dim": None,
    },
    "small": {
        "sample_size": 64,
        "block_out_channels": (32, 64, 128, 128),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        "attention_head_dim": None,
    },
}


@dataclass
class ViewFusionUNetOutput(BaseOutput):
    """
    Output of [`ViewFusionUNet2DModel`].

    Args:
        noise (`torch.Tensor` of shape `(batch, 3, height, width)`):
            The view's prediction of the target's noise (or of `v` for a v-prediction model).
        weight_logits (`torch.Tensor` of shape `(batch, 3, height, width)`):
            Per-pixel, per-channel logits of how much this view should be trusted; see [`fuse_noise`].
    """

    noise: torch.Tensor
    weight_logits: torch.Tensor


class AzimuthEmbedding(nn.Module):
    """Embed an azimuth (degrees) as harmonics `sin(k a), cos(k a)`, `k = 1..num_frequencies`, then an MLP.

    Integer harmonics are exactly periodic, so 0 and 360 degrees embed identically.

    Example:
        ```py
        >>> AzimuthEmbedding(num_frequencies=8, embedding_dim=128)(torch.tensor([0.0, 90.0])).shape
        torch.Size([2, 128])
        ```
    """

    def __init__(self, num_frequencies: int, embedding_dim: int):
        super().__init__()
        self.register_buffer(
            "frequencies", torch.arange(1, num_frequencies + 1, dtype=torch.float32), persistent=False
        )
        self.linear_1 = nn.Linear(2 * num_frequencies, embedding_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(embedding_dim, embedding_dim)

    def forward(self, azimuth_degrees: torch.Tensor) -> torch.Tensor:
        angles = torch.deg2rad(azimuth_degrees.float())[:, None] * self.frequencies[None, :]
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).to(self.linear_1.weight.dtype)
        return self.linear_2(self.act(self.linear_1(features)))


def reduce_degrees(angles: torch.Tensor | float) -> torch.Tensor:
    """Angles in degrees as float32 in [0, 360), reduced in the precision they come in.

    Python numbers and float64 tensors are reduced in float64, so 1e9 degrees and its remainder mod 360 give the
    same float32 angle; float32 tensors (which cannot hold such angles exactly anyway) stay on their device.

    Example:
        ```py
        >>> reduce_degrees(1e9 + 0.5).item()
        280.5
        ```
    """
    if not torch.is_tensor(angles):
        angles = torch.as_tensor(angles, dtype=torch.float64)
    if not angles.is_floating_point():
        angles = angles.float()
    return torch.remainder(angles, 360.0).float()


class PoseEmbedding(nn.Module):
    """The U-Net's conditioning on where the target is seen from, added to the time embedding.

    The target azimuth is embedded unless `embed_target=False` (a U-Net that embeds it with the noise level, as the
    authors' network does). With `relative_pose=True`, the relative azimuth (target minus input view) is embedded
    too, and a row whose relative azimuth is NaN (the view's pose is unknown) gets a learned "pose unknown" vector
    in its place. Both start at exactly zero (`linear_2` of the relative embedding and the unknown-pose vector), so
    a trained pose-free network given this module computes exactly what it computed before, and fine-tuning starts
    from its outputs.

    Example:
        ```py
        >>> embed = PoseEmbedding(num_frequencies=8, embedding_dim=128, relative_pose=True)
        >>> embed(torch.tensor([90.0, 90.0]), relative_azimuth=torch.tensor([45.0, float("nan")])).shape
        torch.Size([2, 128])
        ```
    """

    def __init__(
        self, num_frequencies: int, embedding_dim: int, relative_pose: bool = False, embed_target: bool = True
    ):
        super().__init__()
        self.target_azimuth = AzimuthEmbedding(num_frequencies, embedding_dim) if embed_target else None
        self.relative_azimuth = None
        if relative_pose:
            self.relative_azimuth = AzimuthEmbedding(num_frequencies, embedding_dim)
            nn.init.zeros_(self.relative_azimuth.linear_2.weight)
            nn.init.zeros_(self.relative_azimuth.linear_2.bias)
            self.unknown_pose = nn.Parameter(torch.zeros(embedding_dim))

    def forward(self, target_azimuth: torch.Tensor, relative_azimuth: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch, embedding_dim)` from `(batch,)` degrees; `relative_azimuth` NaN (or `None`: all) where unknown."""
        embedding = 0
        if self.target_azimuth is not None:
            embedding = self.target_azimuth(target_azimuth)
        if self.relative_azimuth is not None:
            if relative_azimuth is None:
                relative_azimuth = torch.full_like(target_azimuth, float("nan"))
            known = ~torch.isnan(relative_azimuth)
            relative_embedding = self.relative_azimuth(
                torch.where(known, relative_azimuth, torch.zeros_like(relative_azimuth))
            )
            unknown = self.unknown_pose.to(relative_embedding.dtype).expand_as(relative_embedding)
            embedding = embedding + torch.where(known[:, None], relative_embedding, unknown)
        return embedding


def per_sample(value: torch.Tensor | float | int, batch_size: int, device, dtype=None) -> torch.Tensor:
    """A scalar or `(batch,)` conditioning value as a `(batch,)` tensor on `device`.

    Example:
        ```py
        >>> per_sample(0.5, 3, "cpu").tolist()
        [0.5, 0.5, 0.5]
        ```
    """
    value = torch.as_tensor(value, device=device, dtype=dtype).reshape(-1)
    return value.expand(batch_size) if value.numel() == 1 else value


class ViewFusionUNet2DModel(UNet2DModel):
    r"""
    The ViewFusion denoiser: a [`UNet2DModel`] that takes one input view concatenated with the noisy target
    (6 channels), is conditioned on the diffusion time and the target's azimuth, and returns the view's noise
    prediction together with its weight logits.

    Two ways to condition on the diffusion time and the target (`conditioning`):

    - `"timestep"` (this package's networks): the integer timestep through diffusers' sinusoidal embedding and MLP,
      plus the target azimuth as harmonics `sin(k a), cos(k a)` through an MLP ([`PoseEmbedding`]), added.
    - `"noise_level"` (the authors' network, for converted checkpoints): the noise level `alpha_bar_t` and the target
      azimuth in radians, each as `block_out_channels[0] // 2` sinusoidal features, concatenated and passed through
      one MLP of width `4 * block_out_channels[0]`. The network then depends on the noise level alone, not on the
      training schedule's timesteps, so any schedule can sample it.

    Either embedding is added to every residual block's features. With `relative_pose=True` the network is also
    told how far the input view stands from the target (target minus view azimuth) when that is known, and a
    learned "pose unknown" embedding when it is not: one network for posed and unposed inputs. All constructor
    arguments, the parent's included, are part of the config, so `save_pretrained` then `from_pretrained`
    rebuilds exactly the same network.

    Parameters:
        sample_size, center_input_sample, time_embedding_type, time_embedding_dim, freq_shift, flip_sin_to_cos,
        down_block_types, mid_block_type, up_block_types, block_out_channels, layers_per_block,
        mid_block_scale_factor, downsample_padding, downsample_type, upsample_type, dropout, act_fn,
        attention_head_dim, norm_num_groups, attn_norm_num_groups, norm_eps, resnet_time_scale_shift,
        add_attention, num_train_timesteps: as in [`UNet2DModel`].
        class_embed_type, num_class_embeds: kept only so the config mirrors [`UNet2DModel`]'s; must be `None`.
        in_channels (`int`, defaults to 6): 3 for the input view plus 3 for the noisy target.
        out_channels (`int`, defaults to 6): 3 noise channels plus 3 weight-logit channels.
        azimuth_num_frequencies (`int`, defaults to 16): harmonics in the azimuth embeddings.
        relative_pose (`bool`, defaults to `False`): also condition on the relative azimuth of the input view
            (see [`PoseEmbedding`]). Configs written before this option existed load with it off.
        conditioning (`str`, defaults to `"timestep"`): `"timestep"` or `"noise_level"`, see above.
        resnet_skip_time_act (`bool`, defaults to `False`): add the embedding to the residual blocks through a linear
            map alone, without the activation diffusers applies before it (the authors' blocks have none).
        attention_qkv_bias (`bool`, defaults to `True`): whether the attention blocks' query, key and value
            projections have biases (diffusers' do; the authors' have none).
        pixel_range (`tuple[float, float]`, defaults to `(-1.0, 1.0)`): the values the views and the generated
            image take: diffusers' `(-1, 1)`, or `(0, 1)` as the authors' network was trained. The sampler still
            clips its estimate of the clean image to [-1, 1], as theirs does.

    Example:
        ```py
        >>> import torch
        >>> from viewfusion_diffusers import ViewFusionUNet2DModel

        >>> unet = ViewFusionUNet2DModel.from_preset("small")
        >>> view, noisy_target = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
        >>> out = unet(torch.cat([view, noisy_target], dim=1), timestep=10, target_azimuth=torch.tensor([0.0, 90.0]))
        >>> out.noise.shape, out.weight_logits.shape
        (torch.Size([2, 3, 64, 64]), torch.Size([2, 3, 64, 64]))
        ```
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | tuple[int, int] | None = 64,
        in_channels: int = 6,
        out_channels: int = 6,
        center_input_sample: bool = False,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        freq_shift: int = 0,
        flip_sin_to_cos: bool = True,
        down_block_types: tuple[str, ...] = UNET_PRESETS["small"]["down_block_types"],
        mid_block_type: str | None = "UNetMidBlock2D",
        up_block_types: tuple[str, ...] = UNET_PRESETS["small"]["up_block_types"],
        block_out_channels: tuple[int, ...] = UNET_PRESETS["small"]["block_out_channels"],
        layers_per_block: int = 1,
        mid_block_scale_factor: float = 1,
        downsample_padding: int = 1,
        downsample_type: str = "conv",
        upsample_type: str = "conv",
        dropout: float = 0.0,
        act_fn: str = "silu",
        attention_head_dim: int | None = None,
        norm_num_groups: int = 32,
        attn_norm_num_groups: int | None = None,
        norm_eps: float = 1e-5,
        resnet_time_scale_shift: str = "default",
        add_attention: bool = True,
        class_embed_type: str | None = None,
        num_class_embeds: int | None = None,
        num_train_timesteps: int | None = None,
        azimuth_num_frequencies: int = 16,
        relative_pose: bool = False,
        conditioning: str = "timestep",
        resnet_skip_time_act: bool = False,
        attention_qkv_bias: bool = True,
        pixel_range: tuple[float, float] = (-1.0, 1.0),
    ):
        if class_embed_type is not None or num_class_embeds is not None:
            raise ValueError(
                "ViewFusionUNet2DModel is conditioned on the azimuth, not on classes: leave class_embed_type=None."
            )
        if in_channels != 6 or out_channels != 6:
            raise ValueError(
                f"ViewFusion needs in_channels=6 (view + noisy target) and out_channels=6 (noise + weight logits), "
                f"got in_channels={in_channels}, out_channels={out_channels}."
            )
        if time_embedding_type != "positional" or any("Skip" in b for b in (*down_block_types, *up_block_types)):
            raise ValueError(
                "ViewFusionUNet2DModel supports positional time embeddings and blocks without skip connections "
                f"only, got time_embedding_type={time_embedding_type!r} and blocks {down_block_types}, "
                f"{up_block_types}."
            )
        if conditioning not in ("timestep", "noise_level"):
            raise ValueError(f"`conditioning` must be 'timestep' or 'noise_level', got {conditioning!r}.")
        if tuple(pixel_range) not in ((-1.0, 1.0), (0.0, 1.0)):
            raise ValueError(f"`pixel_range` must be (-1, 1) or (0, 1), got {pixel_range}.")
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            center_input_sample=center_input_sample,
            time_embedding_type=time_embedding_type,
            time_embedding_dim=time_embedding_dim,
            freq_shift=freq_shift,
            flip_sin_to_cos=flip_sin_to_cos,
            down_block_types=down_block_types,
            mid_block_type=mid_block_type,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            mid_block_scale_factor=mid_block_scale_factor,
            downsample_padding=downsample_padding,
            downsample_type=downsample_type,
            upsample_type=upsample_type,
            dropout=dropout,
            act_fn=act_fn,
            attention_head_dim=attention_head_dim,
            norm_num_groups=norm_num_groups,
            attn_norm_num_groups=attn_norm_num_groups,
            norm_eps=norm_eps,
            resnet_time_scale_shift=resnet_time_scale_shift,
            add_attention=add_attention,
            class_embed_type=class_embed_type,
            num_class_embeds=num_class_embeds,
            num_train_timesteps=num_train_timesteps,
        )
        time_embed_dim = self.time_embedding.linear_2.out_features
        if conditioning == "noise_level":
            # One sinusoidal projection serves both scalars (it has no weights); the MLP sees them side by side.
            features = block_out_channels[0]
            self.time_proj = Timesteps(features // 2, flip_sin_to_cos=False, downscale_freq_shift=0)
            self.time_embedding = TimestepEmbedding(features, 4 * features, act_fn=act_fn, out_dim=time_embed_dim)
        # The parent's class embedding is the one added to the time embedding: here it embeds the pose (in the
        # parent's slot, so weight names and parameter order are those of earlier checkpoints and optimizer states).
        embeds_target = conditioning == "timestep"
        self.class_embedding = None
        if embeds_target or relative_pose:
            self.class_embedding = PoseEmbedding(azimuth_num_frequencies, time_embed_dim, relative_pose, embeds_target)
        # `UNet2DModel` builds its residual blocks with an activation before the embedding's projection and its
        # attentions with biased q, k, v; the authors' network has neither.
        for module in self.modules():
            if isinstance(module, ResnetBlock2D):
                module.skip_time_act = resnet_skip_time_act
            if isinstance(module, Attention) and not attention_qkv_bias:
                module.to_q.bias = module.to_k.bias = module.to_v.bias = None

    def _fix_state_dict_keys_on_load(self, state_dict) -> None:
        # Checkpoints written before the pose embedding became the class embedding call it `azimuth_embedding`.
        super()._fix_state_dict_keys_on_load(state_dict)
        for key in [k for k in state_dict if k.startswith("azimuth_embedding.")]:
            state_dict["class_embedding.target_azimuth." + key.removeprefix("azimuth_embedding.")] = state_dict.pop(
                key
            )

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ViewFusionUNet2DModel":
        """Build a randomly initialised network from a named preset (`"paper"` or `"small"`).

        Example:
            ```py
            >>> unet = ViewFusionUNet2DModel.from_preset("paper")
            >>> round(sum(p.numel() for p in unet.parameters()) / 1e6, 1)
            35.1
            ```
        """
        if name not in UNET_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(UNET_PRESETS)}.")
        return cls(**{**UNET_PRESETS[name], **overrides})

    def enable_relative_pose(self) -> None:
        """Add the relative-pose conditioning to a network built without it (e.g. a trained pose-free one).

        The new weights start at zero, so the network's outputs do not change until it is fine-tuned with poses.

        Example:
            ```py
            >>> unet = ViewFusionUNet2DModel.from_preset("small", sample_size=16)
            >>> unet.enable_relative_pose()
            >>> unet.config.relative_pose
            True
            ```
        """
        if self.config.relative_pose:
            return
        reference = next(self.time_embedding.parameters())
        embedding = PoseEmbedding(
            self.config.azimuth_num_frequencies,
            self.time_embedding.linear_2.out_features,
            relative_pose=True,
            embed_target=self.config.conditioning == "timestep",
        )
        if self.class_embedding is not None:
            embedding.target_azimuth = self.class_embedding.target_azimuth
        self.class_embedding = embedding.to(device=reference.device, dtype=reference.dtype)
        # A config loaded from a folder that predates the option lists `relative_pose` among the defaults it
        # filled in, which `from_config` would drop: take it off that list so copies of this config keep it.
        used_defaults = [k for k in self.config.get("_use_default_values", []) if k != "relative_pose"]
        self.register_to_config(relative_pose=True, _use_default_values=used_defaults)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int | None,
        target_azimuth: torch.Tensor | float,
        relative_azimuth: torch.Tensor | None = None,
        noise_level: torch.Tensor | float | None = None,
        return_dict: bool = True,
    ) -> ViewFusionUNetOutput | tuple:
        r"""
        Args:
            sample (`torch.Tensor`): `(batch, 6, height, width)`, an input view (channels 0-2) concatenated with
                the noisy target (channels 3-5), both in the config's `pixel_range`.
            timestep (`torch.Tensor` or `int`): the diffusion timestep, a scalar or one per sample. Unused (may be
                `None`) when the network is conditioned on the noise level.
            target_azimuth (`torch.Tensor` or `float`): the target view's azimuth in degrees, a scalar or one per
                sample.
            relative_azimuth (`torch.Tensor`, *optional*): `(batch,)` target minus input-view azimuth in degrees,
                NaN where the view's pose is unknown; `None` when no pose is known. Only for `relative_pose=True`.
            noise_level (`torch.Tensor` or `float`, *optional*): `alpha_bar` of the noisy target, a scalar or one per
                sample; needed (and only used) when `conditioning="noise_level"`.
            return_dict (`bool`, defaults to `True`): return a [`ViewFusionUNetOutput`] instead of a tuple.

        Returns:
            [`ViewFusionUNetOutput`] or `(noise, weight_logits)`.
        """
        batch_size, device = sample.shape[0], sample.device
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0

        # 1. conditioning: the diffusion time and the pose, as one embedding
        target_azimuth = per_sample(reduce_degrees(target_azimuth).to(device), batch_size, device)
        if relative_azimuth is not None:
            relative_azimuth = reduce_degrees(relative_azimuth).to(device)
            if not self.config.relative_pose and bool(torch.isfinite(relative_azimuth).any()):
                raise ValueError(
                    "This U-Net was built without relative_pose=True: it cannot use the input views' azimuths."
                )
        if self.config.conditioning == "noise_level":
            if noise_level is None:
                raise ValueError(
                    "This U-Net is conditioned on the noise level: pass `noise_level` (alpha_bar of the sample)."
                )
            noise_level = per_sample(noise_level, batch_size, device, torch.float32)
            features = torch.cat([self.time_proj(noise_level), self.time_proj(torch.deg2rad(target_azimuth))], dim=-1)
            emb = self.time_embedding(features.to(dtype=self.dtype))
        else:
            timesteps = timestep
            if not torch.is_tensor(timesteps):
                timesteps = torch.tensor([timesteps], dtype=torch.long, device=device)
            elif timesteps.ndim == 0:
                timesteps = timesteps[None].to(device)
            timesteps = timesteps * torch.ones(batch_size, dtype=timesteps.dtype, device=timesteps.device)
            emb = self.time_embedding(self.time_proj(timesteps).to(dtype=self.dtype))
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(target_azimuth, relative_azimuth).to(dtype=self.dtype)

        # 2. pre-process
        sample = self.conv_in(sample)

        # 3. down
        down_block_res_samples = (sample,)
        for downsample_block in self.down_blocks:
            sample, res_samples = downsample_block(hidden_states=sample, temb=emb)
            down_block_res_samples += res_samples

        # 4. mid
        if self.mid_block is not None:
            sample = self.mid_block(sample, emb)

        # 5. up
        for upsample_block in self.up_blocks:
            res_samples = down_block_res_samples[-len(upsample_block.resnets) :]
            down_block_res_samples = down_block_res_samples[: -len(upsample_block.resnets)]
            sample = upsample_block(sample, res_samples, emb)

        # 6. post-process
        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        sample = self.conv_out(sample)

        # 7. the first three channels predict noise, the last three weight that prediction
        noise, weight_logits = sample[:, :3], sample[:, 3:]
        if not return_dict:
            return (noise, weight_logits)
        return ViewFusionUNetOutput(noise=noise, weight_logits=weight_logits)
