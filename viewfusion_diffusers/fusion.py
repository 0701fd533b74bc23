"""The ViewFusion rule: a per-pixel, per-channel softmax over each sample's views.

Every (sample, view) pair is denoised independently by the U-Net; the only place where views meet is
here. Samples may have different numbers of views, so the pairs arrive flattened (all views of sample 0,
then all views of sample 1, ...) together with the number of views of each sample.
"""

import torch


def pad_mask(num_views: torch.Tensor) -> torch.Tensor:
    """`(batch, max_views)` bool mask of the padded layout: True where one of a sample's `num_views` stands.

    Example:
        ```py
        >>> pad_mask(torch.tensor([1, 3])).tolist()
        [[True, False, False], [True, True, True]]
        ```
    """
    return torch.arange(int(num_views.max()), device=num_views.device)[None, :] < num_views[:, None]


def pad_views(flat: torch.Tensor, num_views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter flattened per-view tensors into a padded `(batch, max_views, ...)` layout.

    Args:
        flat (`torch.Tensor`): `(sum(num_views), ...)`, the views of sample 0 first, then sample 1, ...
        num_views (`torch.Tensor`): `(batch,)` integer number of views of each sample, each at least 1.

    Returns:
        `(padded, view_mask)`: `padded` is `(batch, max_views, ...)` with zeros in the padded slots and
        `view_mask` is a `(batch, max_views)` bool tensor, True where a real view stands. When every sample
        has the same number of views, `padded` is a view of `flat`: writing into it writes into `flat`.

    Example:
        ```py
        >>> padded, mask = pad_views(torch.randn(4, 3, 8, 8), torch.tensor([1, 3]))
        >>> padded.shape, mask.tolist()
        (torch.Size([2, 3, 3, 8, 8]), [[True, False, False], [True, True, True]])
        ```
    """
    # Counts given on the host stay there: checking them and shaping the layout then never waits for the device.
    num_views = torch.as_tensor(num_views)
    if num_views.ndim != 1 or num_views.numel() == 0:
        raise ValueError(f"`num_views` must be a non-empty 1-D tensor, got shape {tuple(num_views.shape)}.")
    if bool((num_views < 1).any()):
        raise ValueError(f"Every sample needs at least one view, got num_views={num_views.tolist()}.")
    if int(num_views.sum()) != flat.shape[0]:
        raise ValueError(
            f"`num_views` sums to {int(num_views.sum())} but {flat.shape[0]} views were given; they must match."
        )
    view_mask = pad_mask(num_views).to(flat.device, non_blocking=True)
    if view_mask.numel() == flat.shape[0]:
        # Every sample has the same number of views (the usual case): nothing to pad, a reshape will do.
        return flat.reshape(*view_mask.shape, *flat.shape[1:]), view_mask
    padded = flat.new_zeros((*view_mask.shape, *flat.shape[1:]))
    # Boolean-mask assignment fills row by row, which is exactly the sample-major order of `flat`.
    padded[view_mask] = flat
    return padded, view_mask


def fuse_noise(
    noise: torch.Tensor,
    weight_logits: torch.Tensor,
    num_views: torch.Tensor,
    weighting: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuse the per-view noise predictions of each sample into one prediction.

    `fused[b] = sum_i softmax_i(weight_logits[b, i]) * noise[b, i]`, where the softmax runs over the views
    of sample `b`, separately for every pixel and colour channel. Views are unordered: permuting them does
    not change the result. Padded slots get exactly zero weight.

    Args:
        noise (`torch.Tensor`): `(sum(num_views), C, H, W)` per-view predictions (noise, or `v` for a
            v-prediction model: the rule is linear, so it fuses either).
        weight_logits (`torch.Tensor`): `(sum(num_views), C, H, W)` per-view weight logits.
        num_views (`torch.Tensor`): `(batch,)` number of views of each sample.
        weighting (`bool`, defaults to `True`): `False` ignores the logits and averages the views with equal
            weights (the paper's ablation).

    Returns:
        `(fused, weights)`: `fused` is `(batch, C, H, W)`; `weights` is `(batch, max_views, C, H, W)`, summing
        to one over the views of each sample, zero in padded slots.

    Example:
        ```py
        >>> noise, logits = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
        >>> fused, weights = fuse_noise(noise, logits, num_views=torch.tensor([1, 3]))
        >>> torch.allclose(fused[0], noise[0])  # one view: its own prediction
        True
        ```
    """
    if noise.shape != weight_logits.shape:
        raise ValueError(f"`noise` {tuple(noise.shape)} and `weight_logits` {tuple(weight_logits.shape)} differ.")
    noise, view_mask = pad_views(noise, num_views)
    mask = view_mask.view(*view_mask.shape, *([1] * (noise.ndim - 2)))
    if weighting:
        logits, _ = pad_views(weight_logits.float(), num_views)
        if view_mask.numel() > weight_logits.shape[0]:  # some samples have padded slots
            logits = logits.masked_fill(~mask, float("-inf"))
        weights = logits.softmax(dim=1).to(noise.dtype)
    else:
        counts = view_mask.sum(dim=1).view(-1, *([1] * (noise.ndim - 1)))
        weights = (mask / counts).to(noise.dtype).expand_as(noise)
    fused = (weights * noise).sum(dim=1)
    return fused, weights


def predict_fused_noise(
    unet,
    views: torch.Tensor,
    noisy_target: torch.Tensor,
    timestep: torch.Tensor | int | None,
    target_azimuth: torch.Tensor,
    num_views: torch.Tensor,
    view_azimuth: torch.Tensor | None = None,
    noise_level: torch.Tensor | float | None = None,
    weighting: bool = True,
    max_pairs: int | None = None,
    pad_pairs_to: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ViewFusion denoising prediction: every (view, noisy target) pair through the U-Net, then [`fuse_noise`].

    Training, sampling and the benchmarks all call this, so what the model is trained on and what it samples
    with are the same computation.

    Args:
        unet: a [`ViewFusionUNet2DModel`] (or a wrapper with the same call signature).
        views (`torch.Tensor`): `(sum(num_views), 3, H, W)` input views in the U-Net's pixel range, sample-major.
        noisy_target (`torch.Tensor`): `(batch, 3, H, W)` the noisy target of each sample.
        timestep (`torch.Tensor` or `int`): a scalar, or `(batch,)` one per sample; `None` for a U-Net conditioned
            on the noise level.
        target_azimuth (`torch.Tensor`): `(batch,)` target azimuths in degrees.
        num_views (`torch.Tensor`): `(batch,)` number of views of each sample.
        view_azimuth (`torch.Tensor`, *optional*): `(sum(num_views),)` azimuth of each view in degrees, NaN where
            it is unknown; `None` when no view's pose is known.
        noise_level (`torch.Tensor` or `float`, *optional*): `alpha_bar` of the noisy targets, a scalar or one per
            sample, for a U-Net conditioned on the noise level.
        weighting (`bool`, defaults to `True`): `False` averages the views (the paper's ablation).
        max_pairs (`int`, *optional*): at most this many pairs per U-Net call, to cap memory; the result does not
            depend on it.
        pad_pairs_to (`int`, *optional*): run the U-Net on this many pairs, the real ones followed by blank
            padding pairs that are dropped before fusing. Pair counts rounded up to a few fixed sizes keep
            cuDNN and `torch.compile` from re-planning for every new count; the result does not depend on it.

    Returns:
        `(fused, weights)` as returned by [`fuse_noise`].

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionUNet2DModel
        >>> unet = ViewFusionUNet2DModel.from_pretrained("pipelines/viewfusion-pybullet-64/unet")
        >>> views, noisy_target = torch.rand(3, 3, 64, 64) * 2 - 1, torch.randn(1, 3, 64, 64)  # one sample, 3 views
        >>> target_azimuth, num_views = torch.tensor([90.0]), torch.tensor([3])
        >>> fused, weights = predict_fused_noise(unet, views, noisy_target, 999, target_azimuth, num_views)
        >>> fused.shape, weights.shape, weights.sum(dim=1).allclose(torch.ones(1, 3, 64, 64))
        (torch.Size([1, 3, 64, 64]), torch.Size([1, 3, 3, 64, 64]), True)
        ```
    """
    num_views = torch.as_tensor(num_views)  # host counts stay on the host (see `pad_views`)
    view_owner = torch.repeat_interleave(torch.arange(noisy_target.shape[0], device=num_views.device), num_views)
    view_owner = view_owner.to(views.device, non_blocking=True)

    def per_pair(value):
        """A scalar or one value per sample, repeated for each of the sample's views."""
        value = torch.as_tensor(value, device=views.device)
        return value.expand(view_owner.shape[0]) if value.ndim == 0 else value[view_owner]

    pair_azimuths = per_pair(target_azimuth)
    conditioning = {
        "timestep": None if timestep is None else per_pair(timestep),
        "target_azimuth": pair_azimuths,
        "relative_azimuth": None if view_azimuth is None else pair_azimuths - view_azimuth.to(views.device),
        "noise_level": None if noise_level is None else per_pair(noise_level),
    }
    pairs = torch.cat([views, noisy_target[view_owner]], dim=1)
    num_pairs = pairs.shape[0]
    if pad_pairs_to is not None and pad_pairs_to != num_pairs:
        if pad_pairs_to < num_pairs:
            raise ValueError(
                f"`pad_pairs_to`={pad_pairs_to} is below the {num_pairs} pairs given; pass at least {num_pairs}."
            )
        # Every row of the U-Net's batch is computed on its own (group norm, attention within a pair), so blank
        # rows do not change the real ones. A blank row's view pose is unknown (NaN).
        padding = pad_pairs_to - num_pairs
        pairs = torch.cat([pairs, pairs.new_zeros((padding, *pairs.shape[1:]))])
        conditioning = {
            name: None
            if value is None
            else torch.cat([value, value.new_full((padding,), float("nan") if name == "relative_azimuth" else 0)])
            for name, value in conditioning.items()
        }
    chunk = max_pairs or pairs.shape[0]
    outputs = [
        unet(
            pairs[s : s + chunk],
            **{name: None if value is None else value[s : s + chunk] for name, value in conditioning.items()},
            return_dict=False,
        )
        for s in range(0, pairs.shape[0], chunk)
    ]
    noise = torch.cat([o[0] for o in outputs])[:num_pairs]
    weight_logits = torch.cat([o[1] for o in outputs])[:num_pairs]
    return fuse_noise(noise, weight_logits, num_views, weighting=weighting)
