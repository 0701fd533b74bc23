"""The authors' checkpoint format, converted: checked against what their own code computed from the same file.

`tests/data/original-viewfusion/` was made with the authors' code (random weights, a tiny network); its README says
what each reference tensor is.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import diffusers.schedulers.scheduling_ddpm as scheduling_ddpm
import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from safetensors.torch import load_file

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, predict_fused_noise
from viewfusion_diffusers.conversion import (
    OriginalCheckpointError,
    convert_original_state_dict,
    load_original_config,
    unet_config_from_original,
)


FIXTURE = Path(__file__).resolve().parent / "data" / "original-viewfusion"
CHECKPOINT, CONFIG = FIXTURE / "tiny" / "best_model_all.pt", FIXTURE / "tiny" / "config.yaml"
REFERENCE = load_file(FIXTURE / "tiny" / "reference.safetensors")
TRAINING_SCRIPT = str(Path(__file__).resolve().parent.parent / "training" / "train_viewfusion.py")


@pytest.fixture(scope="module")
def converted():
    pipe = ViewFusionPipeline.from_single_file(CHECKPOINT, config_file=CONFIG)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def step_inputs():
    """The two objects of the stored step: their views flattened (2 and 3 of them), counts and target azimuths."""
    counts = REFERENCE["step_view_count"]
    views = torch.cat([REFERENCE["step_views"][i, :n] for i, n in enumerate(counts.tolist())])
    return views, counts, torch.rad2deg(REFERENCE["step_angle"].flatten())


def replayed_noise(noises):
    """DDPM's per-step noise, taken from `noises` in order instead of drawn."""
    noises = list(noises)
    return mock.patch.object(scheduling_ddpm, "randn_tensor", lambda shape, **kwargs: noises.pop(0).reshape(shape))


def test_the_converted_network_computes_what_the_authors_network_computes(converted):
    assert converted.unet.config.conditioning == "noise_level" and tuple(converted.unet.config.pixel_range) == (
        0.0,
        1.0,
    )
    with torch.no_grad():
        noise, logits = converted.unet(
            REFERENCE["net_input"],
            None,
            torch.rad2deg(REFERENCE["net_angle"].flatten()),
            noise_level=REFERENCE["net_noise_level"].flatten(),
            return_dict=False,
        )
    torch.testing.assert_close(torch.cat([noise, logits], dim=1), REFERENCE["net_output"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("t", REFERENCE["step_timesteps"].tolist())
def test_one_denoising_step_matches_their_posterior_and_weights(converted, t):
    views, counts, azimuths = step_inputs()
    sample = REFERENCE["step_sample"]
    scheduler = converted.scheduler
    scheduler.set_timesteps(scheduler.config.num_train_timesteps)
    with torch.no_grad():
        fused, weights = predict_fused_noise(
            converted.unet,
            views,
            sample,
            torch.tensor(t),
            azimuths,
            counts,
            noise_level=converted.noise_level(torch.tensor(t)),
        )
    torch.testing.assert_close(weights, REFERENCE[f"step_t{t}_weights"], atol=1e-4, rtol=0)
    # The step with zero noise is the posterior mean; the step with unit noise adds the posterior's std to it.
    with replayed_noise([torch.zeros_like(sample)]):
        mean = scheduler.step(fused, t, sample).prev_sample
    torch.testing.assert_close(mean, REFERENCE[f"step_t{t}_mean"], atol=1e-4, rtol=0)
    with replayed_noise([torch.ones_like(sample)]):
        std = (scheduler.step(fused, t, sample).prev_sample - mean).flatten(1)
    expected_std = (0.5 * REFERENCE[f"step_t{t}_log_variance"]).exp()
    if t == 0:  # no noise is added at the last step
        assert not std.any()
    else:
        torch.testing.assert_close(std, expected_std[:, None].expand_as(std), atol=1e-4, rtol=1e-3)


def test_the_whole_sampler_matches_theirs_given_the_same_noise(converted):
    views, counts, azimuths = step_inputs()
    objects = list(views.split(counts.tolist()))
    noises = REFERENCE["sampler_noises"]
    with replayed_noise(noises[1:]):  # [0] is the starting noise, [k] the noise added at step t = 50 - k
        out = converted(
            objects,
            target_azimuth=azimuths.double().tolist(),
            latents=noises[0],
            num_inference_steps=50,
            output_type="latent",
        )
    torch.testing.assert_close(out.images, REFERENCE["sampler_output"], atol=1e-4, rtol=0)
    # The same sample as a picture: [0, 1] pixels, as the authors' network makes them.
    with replayed_noise(noises[1:]):
        picture = converted(
            objects, target_azimuth=azimuths.double().tolist(), latents=noises[0], output_type="pt"
        ).images
    torch.testing.assert_close(picture, REFERENCE["sampler_output"].clamp(0, 1), atol=1e-4, rtol=0)


def test_the_papers_full_key_set_converts_to_a_network_of_the_papers_size():
    shapes = json.loads((FIXTURE / "paper-model-keys.json").read_text())
    generator = torch.Generator().manual_seed(0)
    state_dict = {key: torch.randn(shape, generator=generator) for key, shape in shapes.items()}
    unet = ViewFusionUNet2DModel(**unet_config_from_original(load_original_config()))
    unet.load_state_dict(convert_original_state_dict(state_dict, unet))
    authors = sum(int(np.prod(shape)) for key, shape in shapes.items() if key.startswith("denoise_fn."))
    assert sum(p.numel() for p in unet.parameters()) == authors
    assert round(authors / 1e6, 1) == 33.9
    assert unet.config.block_out_channels == [64, 128, 192, 320]
    assert unet.config.down_block_types == ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"]


def write_checkpoint(path, model):
    torch.save({"it": 1, "model": model}, path)
    return path


def tiny_state_dict():
    return torch.load(CHECKPOINT, map_location="cpu", weights_only=True)["model"]


def bad_checkpoints(folder: Path) -> dict:
    """Each bad file and the words its error must contain."""
    data = CHECKPOINT.read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    (folder / "text.pt").write_text("not a checkpoint\n")
    (folder / "random.pt").write_bytes(np.random.default_rng(0).bytes(2000))
    torch.save({"model": {"x": torch.zeros(1)}, "config": NotATensor()}, folder / "objects.pt")
    state = tiny_state_dict()
    missing = {k: v for k, v in state.items() if "downs.2." not in k}
    extra = {**state, "denoise_fn.extra_head.weight": torch.zeros(3)}
    return {
        folder / "truncated.pt": "truncated or damaged",
        folder / "text.pt": "not a PyTorch checkpoint",
        folder / "random.pt": "not a PyTorch checkpoint",
        folder / "objects.pt": "Python objects other than tensors",
        write_checkpoint(folder / "other.pt", {"encoder.weight": torch.zeros(2)}): "no weights under 'denoise_fn.'",
        write_checkpoint(folder / "missing.pt", missing): "missing",
        write_checkpoint(folder / "extra.pt", extra): "1 unexpected weights (denoise_fn.extra_head.weight)",
    }


class NotATensor:
    """An object `torch.load(weights_only=True)` must refuse to rebuild."""


def test_every_bad_file_gets_its_clear_error_and_leaves_no_output(tmp_path):
    from viewfusion_diffusers.cli import main

    for path, words in bad_checkpoints(tmp_path).items():
        with pytest.raises(OriginalCheckpointError, match=words.replace("(", r"\(").replace(")", r"\)")):
            ViewFusionPipeline.from_single_file(path, config_file=CONFIG)
        output = tmp_path / f"out-{path.stem}"
        assert main(["convert", "--checkpoint", str(path), "--config", str(CONFIG), "--output", str(output)]) == 2
        assert not output.exists(), path.name
    # A config whose network does not match the weights' shapes (the paper's, for the tiny checkpoint).
    with pytest.raises(OriginalCheckpointError, match="does not match the configuration"):
        ViewFusionPipeline.from_single_file(CHECKPOINT)
    with pytest.raises(FileNotFoundError, match="No such file"):
        ViewFusionPipeline.from_single_file(tmp_path / "absent.pt")


def test_a_checkpoint_saved_from_a_ddp_wrapper_converts_the_same(tmp_path, converted, caplog):
    ddp = write_checkpoint(tmp_path / "ddp.pt", {f"module.{k}": v for k, v in tiny_state_dict().items()})
    with caplog.at_level("WARNING"):
        pipe = ViewFusionPipeline.from_single_file(ddp, config_file=CONFIG)
    assert "DistributedDataParallel" in caplog.text
    for (name, ours), (_, reference) in zip(pipe.unet.state_dict().items(), converted.unet.state_dict().items()):
        assert torch.equal(ours, reference), name


def test_a_converted_folder_saves_loads_and_samples_like_any_pipeline(converted, tmp_path):
    views, counts, azimuths = step_inputs()
    objects = list(views.split(counts.tolist()))

    def sample(pipe, **kwargs):
        return pipe(
            objects,
            target_azimuth=azimuths.double().tolist(),
            num_inference_steps=4,
            output_type="np",
            generator=torch.Generator().manual_seed(0),
            **kwargs,
        ).images

    converted.save_pretrained(tmp_path / "nmr")
    loaded = ViewFusionPipeline.from_pretrained(tmp_path / "nmr")
    loaded.set_progress_bar_config(disable=True)
    assert json.loads((tmp_path / "nmr" / "unet" / "config.json").read_text())["conditioning"] == "noise_level"
    np.testing.assert_array_equal(sample(loaded), sample(converted))

    loaded.to(dtype=torch.float16).save_pretrained(tmp_path / "nmr", variant="fp16")
    half = ViewFusionPipeline.from_pretrained(tmp_path / "nmr", variant="fp16", torch_dtype=torch.float32)
    for (name, ours), (_, reference) in zip(half.unet.state_dict().items(), converted.unet.state_dict().items()):
        torch.testing.assert_close(ours, reference.half().float(), atol=0, rtol=0, msg=name)

    for scheduler_class in (DDIMScheduler, DPMSolverMultistepScheduler):
        converted.scheduler = scheduler_class.from_config(converted.scheduler.config)
        images = sample(converted)
        assert images.shape == (2, 16, 16, 3) and np.isfinite(images).all()
        np.testing.assert_array_equal(images, sample(converted))  # seeded
    converted.scheduler = scheduling_ddpm.DDPMScheduler.from_config(converted.scheduler.config)


def test_from_single_file_fetches_a_hub_file_through_the_hub_cache(tmp_path, monkeypatch, converted):
    # A local Hub cache holding bronemos/view-fusion's file, read offline by `hf_hub_download` as a real fetch would
    # be.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--bronemos--view-fusion"
    (repo / "snapshots" / commit).mkdir(parents=True)
    shutil.copy(CHECKPOINT, repo / "snapshots" / commit / "best_model_all.pt")
    shutil.copy(CONFIG, repo / "snapshots" / commit / "config.yaml")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in (
        "bronemos/view-fusion/best_model_all.pt",
        "https://huggingface.co/bronemos/view-fusion/blob/main/best_model_all.pt",
    ):
        pipe = ViewFusionPipeline.from_single_file(
            name, config_file="bronemos/view-fusion/config.yaml", cache_dir=tmp_path / "hub"
        )
        assert torch.equal(pipe.unet.conv_in.weight, converted.unet.conv_in.weight)
    with pytest.raises(FileNotFoundError, match="could not be fetched"):
        ViewFusionPipeline.from_single_file("bronemos/view-fusion/other.pt", cache_dir=tmp_path / "hub")


def test_viewfusion_convert_writes_a_pipeline_folder_with_a_model_card(tmp_path, converted):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    output = tmp_path / "nmr"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewfusion_diffusers.cli",
            "convert",
            "--checkpoint",
            str(CHECKPOINT),
            "--config",
            str(CONFIG),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in output.iterdir()) == [
        "README.md",
        "model_index.json",
        "pipeline.py",
        "scheduler",
        "unet",
    ]
    card = (output / "README.md").read_text()
    assert "license: mit" in card and "0.033" in card and "bronemos/view-fusion" in card
    loaded = ViewFusionPipeline.from_pretrained(output)
    for (name, ours), (_, reference) in zip(loaded.unet.state_dict().items(), converted.unet.state_dict().items()):
        assert torch.equal(ours, reference), name
    assert loaded.scheduler.config.num_train_timesteps == 50 and loaded.scheduler.config.beta_end == 0.2


def test_a_noise_level_unet_trains_on_levels_between_two_timesteps(converted):
    from dataclasses import replace

    from viewfusion_diffusers.data import TrainingBatch
    from viewfusion_diffusers.training_utils import fused_loss

    levels = []

    class Recording(torch.nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet, self.config = unet, unet.config

        def forward(self, *args, noise_level=None, **kwargs):
            levels.append(noise_level)
            return self.unet(*args, noise_level=noise_level, **kwargs)

    views, counts, azimuths = step_inputs()
    timesteps = torch.tensor([1, 30])
    batch = TrainingBatch(
        input_views=views * 2 - 1,
        input_azimuths=torch.zeros(5, dtype=torch.float64),
        num_views=counts,
        target=REFERENCE["step_sample"].clamp(-1, 1),
        target_azimuth=azimuths,
        noise=torch.randn(2, 3, 16, 16),
        timesteps=timesteps,
        posed=torch.zeros(2, dtype=torch.bool),
        noise_level_fraction=torch.tensor([0.25, 0.75]),
    )
    fused_loss(Recording(converted.unet), converted.scheduler, batch, 16).backward()
    alphas = converted.scheduler.alphas_cumprod
    expected = alphas[timesteps - 1] + torch.tensor([0.25, 0.75]) * (alphas[timesteps] - alphas[timesteps - 1])
    torch.testing.assert_close(levels[0], expected.repeat_interleave(counts))
    with pytest.raises(ValueError, match="timesteps from 1"):
        fused_loss(converted.unet, converted.scheduler, replace(batch, timesteps=torch.tensor([0, 5])), 16)


def test_a_converted_model_fine_tunes_in_an_accelerate_subprocess(converted, rendered_dataset, tmp_path):
    converted.save_pretrained(tmp_path / "nmr")
    output = tmp_path / "tuned"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--dynamo_backend",
        "no",
        "--mixed_precision",
        "no",
        TRAINING_SCRIPT,
        "--data_dir",
        str(rendered_dataset),
        "--output_dir",
        str(output),
        "--pretrained_model_name_or_path",
        str(tmp_path / "nmr"),
        "--resolution",
        "16",
        "--train_batch_size",
        "2",
        "--max_views",
        "3",
        "--max_train_steps",
        "2",
        "--lr_warmup_steps",
        "0",
        "--learning_rate",
        "1e-3",
        "--validation_steps",
        "2",
        "--validation_inference_steps",
        "2",
        "--num_validation_objects",
        "1",
        "--report_to",
        "none",
        "--relative_pose",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    tuned = ViewFusionPipeline.from_pretrained(output)
    assert tuned.unet.config.conditioning == "noise_level" and tuned.unet.config.relative_pose
    assert tuple(tuned.unet.config.pixel_range) == (0.0, 1.0)
    changed = [
        name
        for name, value in tuned.unet.state_dict().items()
        if name in converted.unet.state_dict() and not torch.equal(value, converted.unet.state_dict()[name])
    ]
    assert changed, "two steps at lr 1e-3 changed no weight"
    assert (output / "validation" / "step-0000002.png").exists()


def test_the_command_lines_take_a_converted_pipeline(converted, rendered_dataset, tmp_path, lpips_weights_available):
    converted.save_pretrained(tmp_path / "nmr")
    view = str(Path(__file__).resolve().parent.parent / "examples" / "views" / "object008_az000.png")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    commands = {
        "orbit": [
            "orbit",
            "--views",
            view,
            "--steps",
            "2",
            "--step-degrees",
            "180",
            "--output",
            str(tmp_path / "orbit.gif"),
        ],
        "eval": [
            "eval",
            "--data_dir",
            str(rendered_dataset),
            "--num_objects",
            "1",
            "--num_views",
            "1",
            "--num_inference_steps",
            "2",
            "--output_dir",
            str(tmp_path / "eval"),
        ],
    }
    for name, arguments in commands.items():
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "viewfusion_diffusers.cli",
                *arguments[:1],
                "--pipeline",
                str(tmp_path / "nmr"),
                *arguments[1:],
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    assert PIL.Image.open(tmp_path / "orbit.gif").n_frames == 2
    records = json.loads((tmp_path / "eval" / "results.json").read_text())["records"]
    assert {r["method"] for r in records} >= {"viewfusion", "nearest_view"}
    assert all(0 <= r["lpips"] for r in records)
