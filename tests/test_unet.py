import inspect

import pytest
import torch
from diffusers import UNet2DModel

from viewfusion_diffusers import UNET_PRESETS, ViewFusionUNet2DModel, ViewFusionUNetOutput
from conftest import make_tiny_unet


def test_forward_returns_named_noise_and_weight_logits():
    unet = make_tiny_unet()
    out = unet(torch.randn(4, 6, 16, 16), timestep=torch.tensor([1, 5, 9, 100]), azimuth=torch.tensor([0.0, 15, 90, 345]))
    assert isinstance(out, ViewFusionUNetOutput)
    assert out.noise.shape == out.weight_logits.shape == (4, 3, 16, 16)
    noise, logits = unet(torch.randn(2, 6, 16, 16), timestep=3, azimuth=45.0, return_dict=False)
    assert noise.shape == logits.shape == (2, 3, 16, 16)


def test_azimuth_conditions_the_output_and_is_periodic():
    unet = make_tiny_unet()
    x = torch.randn(1, 6, 16, 16)
    with torch.no_grad():
        at_0, at_360, at_90 = (unet(x, 10, azimuth=a).noise for a in (0.0, 360.0, 90.0))
    torch.testing.assert_close(at_0, at_360, atol=1e-5, rtol=0)
    assert (at_0 - at_90).abs().max() > 1e-4


def test_every_parent_argument_is_declared_in_the_subclass():
    parent = set(inspect.signature(UNet2DModel.__init__).parameters) - {"self"}
    child = inspect.signature(ViewFusionUNet2DModel.__init__).parameters
    assert parent <= set(child)
    assert not any(p.kind == p.VAR_KEYWORD for p in child.values()), "a **kwargs would reload with defaults"


def test_save_and_reload_rebuilds_non_default_config(tmp_path):
    unet = make_tiny_unet(
        norm_eps=1e-6, act_fn="silu", dropout=0.0, freq_shift=1, flip_sin_to_cos=False, mid_block_scale_factor=0.5,
        resnet_time_scale_shift="scale_shift", azimuth_num_frequencies=7, attention_head_dim=8,
    )
    unet.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    reloaded = ViewFusionUNet2DModel.from_pretrained(tmp_path).eval()
    for key, value in unet.config.items():
        if key.startswith("_"):
            continue
        assert reloaded.config[key] == (list(value) if isinstance(value, tuple) else value), key
    x = torch.randn(2, 6, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(unet(x, 7, 30.0).noise, reloaded(x, 7, 30.0).noise)


def test_presets_and_their_sizes():
    counts = {name: sum(p.numel() for p in ViewFusionUNet2DModel.from_preset(name).parameters()) for name in UNET_PRESETS}
    assert 30e6 < counts["paper"] < 38e6
    assert counts["small"] < 6e6
    with pytest.raises(ValueError, match="Unknown preset"):
        ViewFusionUNet2DModel.from_preset("huge")


def test_wrong_channel_counts_are_refused():
    with pytest.raises(ValueError, match="in_channels=6"):
        make_tiny_unet(in_channels=3)
