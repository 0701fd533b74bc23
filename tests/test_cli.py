"""The `viewfusion` command in real subprocesses, on the example views shipped in examples/views."""

import json
import os
import subprocess
import sys
from pathlib import Path

import PIL.Image
import pytest
import torch


EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples" / "views").glob("object008_*.png"))


def viewfusion(*args):
    return subprocess.run(
        [sys.executable, "-m", "viewfusion_diffusers.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def tiny_posed_pipeline_32_dir(tmp_path_factory):
    """A random 32x32 pipeline whose U-Net takes poses, with a random (not zero) relative-pose embedding, so
    that giving the views' azimuths changes its output."""
    from conftest import TINY_UNET_32

    from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler

    torch.manual_seed(0)
    unet = ViewFusionUNet2DModel(**TINY_UNET_32, relative_pose=True)
    with torch.no_grad():
        for parameter in unet.class_embedding.relative_azimuth.linear_2.parameters():
            parameter.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("tiny-posed-pipeline-32")
    ViewFusionPipeline(unet, default_scheduler()).save_pretrained(folder)
    return folder


def test_importing_the_cli_loads_no_torch():
    # What keeps `viewfusion --help` and command-line mistakes instant: parsing needs none of the heavy libraries.
    heavy = "('torch', 'diffusers', 'pybullet', 'accelerate')"
    code = f"import sys, viewfusion_diffusers.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_generate_writes_a_reproducible_image_and_weight_maps(tiny_pipeline_32_dir, tmp_path):
    assert len(EXAMPLES) == 4
    outputs = []
    for name in ("a.png", "b.png"):
        result = viewfusion(
            "generate",
            "--pipeline",
            tiny_pipeline_32_dir,
            "--views",
            *EXAMPLES[:2],
            "--azimuth",
            90,
            "--steps",
            2,
            "--seed",
            3,
            "--output",
            tmp_path / name,
            "--weights-output",
            tmp_path / f"w_{name}",
        )
        assert result.returncode == 0, result.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    with PIL.Image.open(tmp_path / "a.png") as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    with PIL.Image.open(tmp_path / "w_a.png") as weights:
        # Two inputs, the novel view, two weight maps, under a header row naming them.
        assert weights.size[0] == 32 * 5 and weights.size[1] > 32
    other = viewfusion(
        "generate",
        "--pipeline",
        tiny_pipeline_32_dir,
        "--views",
        *EXAMPLES[:2],
        "--azimuth",
        90,
        "--steps",
        2,
        "--seed",
        4,
        "--output",
        tmp_path / "c.png",
    )
    assert other.returncode == 0 and (tmp_path / "c.png").read_bytes() != outputs[0]


def test_weight_grid_shows_the_views_as_the_model_sees_them(tiny_pipeline_32_dir, tmp_path):
    # A transparent view: the model sees it composited on white, and so must the weight grid.
    transparent = tmp_path / "transparent.png"
    PIL.Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(transparent)
    result = viewfusion(
        "generate",
        "--pipeline",
        tiny_pipeline_32_dir,
        "--views",
        transparent,
        "--azimuth",
        0,
        "--steps",
        1,
        "--output",
        tmp_path / "x.png",
        "--weights-output",
        tmp_path / "w.png",
    )
    assert result.returncode == 0, result.stderr
    with PIL.Image.open(tmp_path / "w.png") as grid:
        grid = grid.convert("RGB")
        first_view = grid.crop((0, grid.height - 32, 32, grid.height))
        assert first_view.getextrema() == ((255, 255), (255, 255), (255, 255))


def test_generate_several_samples_in_the_format_the_name_asks_for(tiny_pipeline_32_dir, tmp_path):
    result = viewfusion(
        "generate",
        "--pipeline",
        tiny_pipeline_32_dir,
        "--views",
        EXAMPLES[0],
        "--azimuth",
        0,
        "--steps",
        1,
        "--num-samples",
        2,
        "--output",
        tmp_path / "novel.jpg",
    )
    assert result.returncode == 0, result.stderr
    for name in ("novel_0.jpg", "novel_1.jpg"):
        with PIL.Image.open(tmp_path / name) as image:
            assert image.format == "JPEG"


def test_view_azimuths_reach_the_pipeline(tiny_posed_pipeline_32_dir, tmp_path):
    common = [
        "generate",
        "--pipeline",
        tiny_posed_pipeline_32_dir,
        "--views",
        *EXAMPLES[:2],
        "--azimuth",
        90,
        "--steps",
        2,
        "--seed",
        0,
    ]
    for name, azimuths in (
        ("unposed.png", []),
        ("posed.png", ["--view-azimuths", 0, 180]),
        ("posed_again.png", ["--view-azimuths", 0, 180]),
        ("rotated.png", ["--view-azimuths", 30, 210]),
    ):
        result = viewfusion(*common, *azimuths, "--output", tmp_path / name)
        assert result.returncode == 0, result.stderr
    read = lambda name: (tmp_path / name).read_bytes()
    assert read("posed.png") == read("posed_again.png")
    # The U-Net is conditioned on the angle from each view to the target, so the given azimuths matter.
    assert read("posed.png") != read("unposed.png") and read("posed.png") != read("rotated.png")


def test_orbit_writes_24_frames_and_reports_its_time(tiny_pipeline_32_dir, tmp_path):
    result = viewfusion(
        "orbit",
        "--pipeline",
        tiny_pipeline_32_dir,
        "--views",
        EXAMPLES[0],
        "--steps",
        1,
        "--max-views",
        3,
        "--output",
        tmp_path / "orbit.gif",
    )
    assert result.returncode == 0, result.stderr
    with PIL.Image.open(tmp_path / "orbit.gif") as gif:
        assert gif.n_frames == 24
    assert "24 frames in" in result.stdout and "Orbit" in result.stderr


def test_posed_orbit_with_view_azimuths(tiny_posed_pipeline_32_dir, tmp_path):
    common = [
        "orbit",
        "--pipeline",
        tiny_posed_pipeline_32_dir,
        "--views",
        EXAMPLES[0],
        "--steps",
        1,
        "--max-views",
        2,
        "--step-degrees",
        90,
    ]
    assert viewfusion(*common, "--output", tmp_path / "unposed.gif").returncode == 0
    result = viewfusion(*common, "--view-azimuths", 0, "--output", tmp_path / "posed.gif")
    assert result.returncode == 0, result.stderr
    with PIL.Image.open(tmp_path / "posed.gif") as gif:
        assert gif.n_frames == 4
    assert (tmp_path / "posed.gif").read_bytes() != (tmp_path / "unposed.gif").read_bytes()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["generate", "--views", "missing.png", "--azimuth", "0", "--output", "x.png"], "does not exist"),
        (["generate", "--views", "NOT_AN_IMAGE", "--azimuth", "0", "--output", "x.png"], "cannot read"),
        (["generate", "--views", "--azimuth", "0", "--output", "x.png"], "expected at least one argument"),
        (
            ["generate", "--views", EXAMPLES[0], "--azimuth", "0", "--output", "x.png", "--steps", "0"],
            "--steps must be at least 1",
        ),
        (["orbit", "--views", EXAMPLES[0], "--output", "orbit.mp4"], "use a .gif name"),
        (
            ["orbit", "--views", EXAMPLES[0], "--output", "o.gif", "--step-degrees", "725"],
            "does not divide the circle",
        ),
        (
            ["orbit", "--views", EXAMPLES[0], "--output", "o.gif", "--step-degrees", "25"],
            "(360, 180, 120, 90, 72, 60, 45, 40, 36, 30, 24",
        ),
        (
            ["orbit", "--views", EXAMPLES[0], "--output", "o.gif", "--step-degrees", "-15"],
            "does not divide the circle",
        ),
        (
            ["generate", "--views", EXAMPLES[0], "--azimuth", "0", "--output", "x.png", "--scheduler", "euler"],
            "invalid choice",
        ),
        (
            ["generate", "--views", EXAMPLES[0], "--azimuth", "0", "--output", "x.jpgx"],
            "unknown image extension '.jpgx'; use one of",
        ),
        (
            ["generate", "--views", EXAMPLES[0], "--azimuth", "0", "--output", "x.wmf"],
            "PIL cannot write RGB images as '.wmf'",
        ),
        (
            ["generate", "--views", EXAMPLES[0], "--azimuth", "0", "--output", "x.png", "--weights-output", "w"],
            "--weights-output",
        ),
        (
            ["generate", "--views", *EXAMPLES[:2], "--view-azimuths", "0", "--azimuth", "0", "--output", "x.png"],
            "--view-azimuths got 1 azimuths for 2 --views",
        ),
        (
            ["generate", "--views", EXAMPLES[0], "--view-azimuths", "nan", "--azimuth", "0", "--output", "x.png"],
            "--view-azimuths must be finite",
        ),
        (
            ["orbit", "--views", EXAMPLES[0], "--view-azimuths", "inf", "--output", "o.gif"],
            "--view-azimuths must be finite",
        ),
        (["generate", "--views", EXAMPLES[0], "--azimuth", "nan", "--output", "x.png"], "--azimuth must be a finite"),
        (
            ["generate", "--views", EXAMPLES[0], "--view-azimuths", "0", "--azimuth", "0", "--output", "x.png"],
            "--view-azimuths needs a pipeline trained with poses",
        ),
    ],
)
def test_bad_input_gives_a_message_and_a_nonzero_exit(tiny_pipeline_32_dir, tmp_path, arguments, message):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    arguments = [str(not_an_image) if a == "NOT_AN_IMAGE" else a for a in arguments]
    result = viewfusion(*arguments, "--pipeline", tiny_pipeline_32_dir)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "x.jpgx").exists()


def test_subcommands_show_their_own_options():
    for command, option in (
        ("render", "--output_dir"),
        ("eval", "--posed"),
        ("generate", "--view-azimuths"),
        ("orbit", "--max-views"),
    ):
        result = viewfusion(command, "--help")
        assert result.returncode == 0 and option in result.stdout, (command, result.stdout)
    assert "frame of the training data" in viewfusion("generate", "--help").stdout
    result = viewfusion("eval", "--pipeline", "x")
    assert (
        result.returncode == 2
        and "viewfusion eval: error: the following arguments are required: --data_dir" in result.stderr
    )


@pytest.mark.usefixtures("lpips_weights_available")
def test_eval_posed_scores_both_modes_on_the_same_samples(tiny_posed_pipeline_32_dir, rendered_dataset, tmp_path):
    result = viewfusion(
        "eval",
        "--pipeline",
        tiny_posed_pipeline_32_dir,
        "--data_dir",
        rendered_dataset,
        "--split",
        "train",
        "--num_views",
        2,
        "--num_objects",
        2,
        "--num_inference_steps",
        2,
        "--posed",
        "--output_dir",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    by_method = {}
    for r in results["records"]:
        by_method.setdefault(r["method"], []).append(r)
    assert set(by_method) == {
        "viewfusion",
        "viewfusion_posed",
        "equal_weights",
        "equal_weights_posed",
        "nearest_view",
        "mean_view",
    }
    samples = lambda method: [(r["object_id"], r["target_index"], r["input_indices"]) for r in by_method[method]]
    assert all(samples(method) == samples("viewfusion") for method in by_method)
    assert all("pose_within_15" in r for r in results["records"])
    # The same noise, but the views' azimuths given: a different image.
    assert [r["lpips"] for r in by_method["viewfusion_posed"]] != [r["lpips"] for r in by_method["viewfusion"]]
    markdown = (tmp_path / "results.md").read_text()
    assert (
        "| viewfusion_posed − viewfusion | 2 | 2 |" in markdown
        and "| viewfusion_posed − equal_weights_posed | 2 | 2 |" in markdown
    )
    per_category = markdown.split("## Per category")[1]
    assert "pose ±15°" in per_category and "| viewfusion_posed |" in per_category
    assert (tmp_path / "grid_2_views.png").exists() and (tmp_path / "grid_2_views_posed.png").exists()
