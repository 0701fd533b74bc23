"""The trained default pipeline in pipelines/: a Hub-format folder that loads, by path and by repo id."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open
from safetensors.torch import load_file

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from viewfusion_diffusers.constants import DEFAULT_PIPELINE


ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "pipelines" / "viewfusion-pybullet-64"
EXAMPLES = sorted((ROOT / "examples" / "views").glob("object025_*.png"))


def generate(pipeline, views, steps=2):
    pipeline.set_progress_bar_config(disable=True)
    return pipeline(
        views, 90.0, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), output_type="np"
    )


def test_the_command_line_default_is_the_shipped_folder():
    assert Path(DEFAULT_PIPELINE) == SHIPPED


def test_folder_layout_size_and_model_card():
    for name in (
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
        "README.md",
    ):
        assert (SHIPPED / name).is_file(), name
    assert not list(SHIPPED.rglob("*.bin")) and not list(SHIPPED.rglob("*.pt"))
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert size < 25 * 2**20, f"{size / 2**20:.1f} MB"
    card = ModelCard.load(SHIPPED / "README.md")
    assert card.data.library_name == "diffusers" and card.data.license == "mit"
    assert card.data.pipeline_tag and "viewfusion" in card.data.tags
    assert "LPIPS" in card.text and "nearest" in card.text


def test_config_matches_the_weights():
    weights = load_file(SHIPPED / "unet" / "diffusion_pytorch_model.safetensors")
    model = ViewFusionUNet2DModel.from_config(ViewFusionUNet2DModel.load_config(SHIPPED / "unet"))
    model._fix_state_dict_keys_on_load(weights)  # folders written before the pose embedding was renamed
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert {name: tuple(t.shape) for name, t in weights.items()} == expected
    assert all(torch.isfinite(t.float()).all() for t in weights.values())


def test_loads_by_path_and_by_repo_id_from_a_local_hub_cache(tmp_path, monkeypatch):
    views = [PIL.Image.open(p) for p in EXAMPLES[:2]]
    by_path = ViewFusionPipeline.from_pretrained(SHIPPED)
    assert by_path.unet.dtype == torch.float32  # fp16 on disk, computed in fp32 on the CPU
    expected = generate(by_path, views)
    assert expected.images.shape == (1, 64, 64, 3)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / "hub" / "models--viewfusion-diffusers--viewfusion-pybullet-64"
    shutil.copytree(SHIPPED, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    by_id = ViewFusionPipeline.from_pretrained(
        "viewfusion-diffusers/viewfusion-pybullet-64", cache_dir=tmp_path / "hub"
    )
    np.testing.assert_array_equal(generate(by_id, views).images, expected.images)


def test_readme_command_with_the_default_pipeline(tmp_path):
    """The README's main command (with 2 steps instead of the default) on the example views."""
    command = [
        sys.executable,
        "-m",
        "viewfusion_diffusers.cli",
        "generate",
        "--views",
        *map(str, EXAMPLES[:3]),
        "--azimuth",
        "270",
        "--steps",
        "2",
        "--output",
        str(tmp_path / "novel.png"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    with PIL.Image.open(tmp_path / "novel.png") as image:
        assert image.size == (64, 64)


PINNED = ROOT / "tests" / "data" / "shipped-pipeline-outputs.safetensors"


def pinned_call(pipeline):
    """Two objects in one call, one posed and one not, on a few ancestral steps: the outputs the pin holds."""
    views = [PIL.Image.open(ROOT / "examples" / "views" / f"object025_az{a:03d}.png") for a in (0, 90, 180)]
    other = [PIL.Image.open(ROOT / "examples" / "views" / f"object008_az{a:03d}.png") for a in (0, 270)]
    pipeline.set_progress_bar_config(disable=True)
    out = pipeline(
        [views, other],
        target_azimuth=[270.0, 90.0],
        input_azimuths=[[0.0, 90.0, 180.0], None],
        num_inference_steps=5,
        generator=[torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)],
        output_type="latent",
    )
    return {"latents": out.images, "weights_0": out.view_weights[0], "weights_1": out.view_weights[1]}


def test_the_shipped_pipeline_samples_what_it_sampled_when_its_outputs_were_pinned():
    # Refactors of the U-Net, the fusion and the pipeline must not change what the shipped weights sample. The pin was
    # made with one thread; other thread counts sum in another order, hence the 1e-5 (bit-identical on one thread).
    with safe_open(PINNED, "pt") as pinned:
        weights_sha256 = pinned.metadata()["weights_sha256"]
    current = hashlib.sha256((SHIPPED / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()
    assert current == weights_sha256, (
        f"the shipped weights changed ({current[:12]}, pinned {weights_sha256[:12]}): write a new pin with "
        "pinned_call() on the new weights, in the same commit"
    )
    outputs = pinned_call(ViewFusionPipeline.from_pretrained(SHIPPED))
    for name, expected in load_file(PINNED).items():
        torch.testing.assert_close(outputs[name], expected, atol=1e-5, rtol=0, msg=name)
