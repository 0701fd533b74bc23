"""`ViewFusionUNet2DModel`: diffusers' `UNet2DModel` with a target-azimuth embedding and a split output."""

from dataclasses import dataclass

import torch
from diffusers import UNet2DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (see below)
from diffusers.utils import BaseOutput
from torch import nn

# `DiffusionPipeline.from_pretrained` finds a component's loading method by looking up diffusers' base
# classes (`ModelMixin`, ...) by name in the module that `model_index.json` names, here this one: the
# import of `ModelMixin` above is what lets a saved pipeline reload its U-Net.

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
        self.register_buffer("frequencies", torch.arange(1, num_frequencies + 1, dtype=torch.float32), persistent=False)
        self.linear_1 = nn.Linear(2 * num_frequencies, embedding_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(embedding_dim, embedding_dim)

    def forward(self, azimuth_degrees: torch.Tensor) -> torch.Tensor:
        angles = torch.deg2rad(azimuth_degrees.float())[:, None] * self.frequencies[None, :]
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).to(self.linear_1.weight.dtype)
        return self.linear_2(self.act(self.linear_1(features)))


class ViewFusionUNet2DModel(UNet2DModel):
    r"""
    The ViewFusion denoiser: a [`UNet2DModel`] that takes one input view concatenated with the noisy target
    (6 channels), is conditioned on the diffusion timestep and the target's azimuth, and returns the view's
    noise prediction together with its weight logits.

    The azimuth is given in degrees (the paper uses radians; `15 * k` degrees is NMR view `k`). Its
    embedding is added to the time embedding, so every residual block sees it, as in the paper. All
    constructor arguments, the parent's included, are part of the config, so `save_pretrained` then
    `from_pretrained` rebuilds exactly the same network.

    Parameters:
        sample_size, center_input_sample, time_embedding_type, time_embedding_dim, freq_shift, flip_sin_to_cos,
        down_block_types, mid_block_type, up_block_types, block_out_channels, layers_per_block,
        mid_block_scale_factor, downsample_padding, downsample_type, upsample_type, dropout, act_fn,
        attention_head_dim, norm_num_groups, attn_norm_num_groups, norm_eps, resnet_time_scale_shift,
        add_attention, num_train_timesteps: as in [`UNet2DModel`].
        class_embed_type, num_class_embeds: kept only so the config mirrors [`UNet2DModel`]'s; must be `None`.
        in_channels (`int`, defaults to 6): 3 for the input view plus 3 for the noisy target.
        out_channels (`int`, defaults to 6): 3 noise channels plus 3 weight-logit channels.
        azimuth_num_frequencies (`int`, defaults to 16): harmonics in the azimuth embedding.

    Example:
        ```py
        >>> import torch
        >>> from viewfusion_diffusers import ViewFusionUNet2DModel

        >>> unet = ViewFusionUNet2DModel.from_preset("small")
        >>> view, noisy_target = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
        >>> out = unet(torch.cat([view, noisy_target], dim=1), timestep=10, azimuth=torch.tensor([0.0, 90.0]))
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
    ):
        if class_embed_type is not None or num_class_embeds is not None:
            raise ValueError("ViewFusionUNet2DModel is conditioned on the azimuth, not on classes: leave class_embed_type=None.")
        if in_channels != 6 or out_channels != 6:
            raise ValueError(
                f"ViewFusion needs in_channels=6 (view + noisy target) and out_channels=6 (noise + weight logits), "
                f"got in_channels={in_channels}, out_channels={out_channels}."
            )
        if time_embedding_type != "positional" or any("Skip" in b for b in (*down_block_types, *up_block_types)):
            raise ValueError(
                "ViewFusionUNet2DModel supports positional time embeddings and blocks without skip connections "
                f"only, got time_embedding_type={time_embedding_type!r} and blocks {down_block_types}, {up_block_types}."
            )
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
        self.azimuth_embedding = AzimuthEmbedding(azimuth_num_frequencies, time_embed_dim)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ViewFusionUNet2DModel":
        """Build a randomly initialised network from a named preset (`"paper"` or `"small"`).

        Example:
            ```py
            >>> unet = ViewFusionUNet2DModel.from_preset("paper")
            >>> round(sum(p.numel() for p in unet.parameters()) / 1e6, 1)
            ```
        """
        if name not in UNET_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(UNET_PRESETS)}.")
        return cls(**{**UNET_PRESETS[name], **overrides})

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        azimuth: torch.Tensor | float,
        return_dict: bool = True,
    ) -> ViewFusionUNetOutput | tuple:
        r"""
        Args:
            sample (`torch.Tensor`): `(batch, 6, height, width)`, an input view (channels 0-2) concatenated with
                the noisy target (channels 3-5), both in [-1, 1].
            timestep (`torch.Tensor` or `int`): the diffusion timestep, a scalar or one per sample.
            azimuth (`torch.Tensor` or `float`): the target view's azimuth in degrees, a scalar or one per sample.
            return_dict (`bool`, defaults to `True`): return a [`ViewFusionUNetOutput`] instead of a tuple.

        Returns:
            [`ViewFusionUNetOutput`] or `(noise, weight_logits)`.
        """
        batch_size = sample.shape[0]
        # 1. time and azimuth: both embeddings are summed and reach every residual block
        timesteps = torch.as_tensor(timestep, device=sample.device)
        timesteps = timesteps.reshape(-1).expand(batch_size) if timesteps.numel() == 1 else timesteps
        azimuth = torch.as_tensor(azimuth, device=sample.device, dtype=torch.float32)
        azimuth = azimuth.reshape(-1).expand(batch_size) if azimuth.numel() == 1 else azimuth
        t_emb = self.time_proj(timesteps).to(dtype=self.dtype)
        emb = self.time_embedding(t_emb) + self.azimuth_embedding(azimuth)

        # 2. pre-process
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0
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

        # 6. post-process: the first three channels predict noise, the last three weight that prediction
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        noise, weight_logits = sample[:, :3], sample[:, 3:]

        if not return_dict:
            return (noise, weight_logits)
        return ViewFusionUNetOutput(noise=noise, weight_logits=weight_logits)
