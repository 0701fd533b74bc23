import inspect
import json
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_unet
from diffusers import UNet2DModel
from safetensors.torch import load_file

from viewfusion_diffusers import UNET_PRESETS, ViewFusionUNet2DModel, ViewFusionUNetOutput


def test_forward_returns_named_noise_and_weight_logits():
    unet = make_tiny_unet()
    out = unet(
        torch.randn(4, 6, 16, 16),
        timestep=torch.tensor([1, 5, 9, 100]),
        target_azimuth=torch.tensor([0.0, 15, 90, 345]),
    )
    assert isinstance(out, ViewFusionUNetOutput)
    assert out.noise.shape == out.weight_logits.shape == (4, 3, 16, 16)
    noise, logits = unet(torch.randn(2, 6, 16, 16), timestep=3, target_azimuth=45.0, return_dict=False)
    assert noise.shape == logits.shape == (2, 3, 16, 16)


def test_azimuth_conditions_the_output_and_is_periodic():
    unet = make_tiny_unet()
    x = torch.randn(1, 6, 16, 16)
    with torch.no_grad():
        at_0, at_360, at_90 = (unet(x, 10, target_azimuth=a).noise for a in (0.0, 360.0, 90.0))
    torch.testing.assert_close(at_0, at_360, atol=1e-5, rtol=0)
    assert (at_0 - at_90).abs().max() > 1e-4


def test_every_parent_argument_is_declared_in_the_subclass():
    parent = set(inspect.signature(UNet2DModel.__init__).parameters) - {"self"}
    child = inspect.signature(ViewFusionUNet2DModel.__init__).parameters
    assert parent <= set(child)
    assert not any(p.kind == p.VAR_KEYWORD for p in child.values()), "a **kwargs would reload with defaults"


def test_save_and_reload_rebuilds_non_default_config(tmp_path):
    unet = make_tiny_unet(
        norm_eps=1e-6,
        act_fn="silu",
        dropout=0.0,
        freq_shift=1,
        flip_sin_to_cos=False,
        mid_block_scale_factor=0.5,
        resnet_time_scale_shift="scale_shift",
        azimuth_num_frequencies=7,
        attention_head_dim=8,
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
    counts = {
        name: sum(p.numel() for p in ViewFusionUNet2DModel.from_preset(name).parameters()) for name in UNET_PRESETS
    }
    assert 30e6 < counts["paper"] < 38e6
    assert counts["small"] < 6e6
    with pytest.raises(ValueError, match="Unknown preset"):
        ViewFusionUNet2DModel.from_preset("huge")


def test_wrong_channel_counts_are_refused():
    with pytest.raises(ValueError, match="in_channels=6"):
        make_tiny_unet(in_channels=3)


DATA = Path(__file__).resolve().parent / "data"


def test_a_folder_written_before_the_pose_embedding_existed_gives_the_same_outputs():
    # A tiny U-Net saved by the code of that time (the azimuth embedding at `azimuth_embedding.*`, no
    # `relative_pose` in its config), with the outputs that code computed on fixed inputs.
    reference = load_file(DATA / "old-format-unet-outputs.safetensors")
    assert "relative_pose" not in json.loads((DATA / "old-format-unet" / "config.json").read_text())
    assert any(
        k.startswith("azimuth_embedding.")
        for k in load_file(DATA / "old-format-unet" / "diffusion_pytorch_model.safetensors")
    )
    unet = ViewFusionUNet2DModel.from_pretrained(DATA / "old-format-unet").eval()
    assert not unet.config.relative_pose
    with torch.no_grad():
        noise, logits = unet(reference["sample"], reference["timestep"], reference["azimuth"], return_dict=False)
    torch.testing.assert_close(noise, reference["noise"], atol=1e-5, rtol=0)  # thread counts change summation order
    torch.testing.assert_close(logits, reference["weight_logits"], atol=1e-5, rtol=0)


def test_enabling_relative_pose_keeps_the_outputs_until_trained():
    unet = make_tiny_unet()
    x, t, azimuth = torch.randn(3, 6, 16, 16), torch.tensor([1, 50, 900]), torch.tensor([0.0, 90.0, 200.0])
    with torch.no_grad():
        before = unet(x, t, azimuth).noise
        unet.enable_relative_pose()
        posed = unet(x, t, azimuth, relative_azimuth=torch.tensor([30.0, float("nan"), -45.0])).noise
        unposed = unet(x, t, azimuth).noise
    assert unet.config.relative_pose
    torch.testing.assert_close(posed, before, atol=0, rtol=0)
    torch.testing.assert_close(unposed, before, atol=0, rtol=0)


def test_relative_azimuth_conditions_each_pair_and_unknown_differs_from_known():
    unet = make_tiny_unet(relative_pose=True)
    with torch.no_grad():  # give the zero-initialised pose layers some weight, as training would
        for parameter in unet.class_embedding.relative_azimuth.linear_2.parameters():
            parameter.normal_(0, 0.5)
        unet.class_embedding.unknown_pose.normal_(0, 0.5)
        x, t, azimuth = torch.randn(3, 6, 16, 16), 10, torch.tensor([90.0, 90.0, 90.0])
        base = unet(x, t, azimuth, relative_azimuth=torch.tensor([0.0, 45.0, 90.0])).noise
        moved = unet(x, t, azimuth, relative_azimuth=torch.tensor([0.0, 135.0, 90.0])).noise
        unknown = unet(x, t, azimuth, relative_azimuth=torch.tensor([0.0, float("nan"), 90.0])).noise
        wrapped = unet(
            x, t, azimuth, relative_azimuth=torch.tensor([360.0, 45.0 - 720.0, 90.0 + 1e9 * 360], dtype=torch.float64)
        ).noise
    torch.testing.assert_close(moved[[0, 2]], base[[0, 2]], atol=0, rtol=0)  # only the changed pair moves
    assert (moved[1] - base[1]).abs().max() > 1e-3
    assert (unknown[1] - base[1]).abs().max() > 1e-3
    torch.testing.assert_close(wrapped, base, atol=1e-5, rtol=0)


def test_a_pose_free_unet_refuses_relative_azimuths_but_takes_all_unknown():
    unet = make_tiny_unet()
    x = torch.randn(2, 6, 16, 16)
    with pytest.raises(ValueError, match="relative_pose"):
        unet(x, 3, 0.0, relative_azimuth=torch.tensor([10.0, 20.0]))
    with torch.no_grad():
        torch.testing.assert_close(
            unet(x, 3, 0.0, relative_azimuth=torch.full((2,), float("nan"))).noise, unet(x, 3, 0.0).noise
        )


def test_huge_azimuths_are_reduced_before_float32():
    unet = make_tiny_unet()
    x = torch.randn(1, 6, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(unet(x, 3, 1e9).noise, unet(x, 3, 1e9 % 360).noise, atol=1e-6, rtol=0)


def test_enabling_relative_pose_on_a_loaded_old_config_survives_from_config(tmp_path):
    unet = make_tiny_unet()
    unet.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["relative_pose"]  # as written before the option existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = ViewFusionUNet2DModel.from_pretrained(tmp_path)
    loaded.enable_relative_pose()
    copy = ViewFusionUNet2DModel.from_config(loaded.config)
    assert copy.config.relative_pose
    assert [n for n, _ in copy.named_parameters()] == [n for n, _ in loaded.named_parameters()]
