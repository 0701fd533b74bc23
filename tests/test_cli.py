"""The `viewfusion` command in real subprocesses, on the example views shipped in examples/views."""

import os
import subprocess
import sys
from pathlib import Path

import PIL.Image
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples" / "views").glob("object008_*.png"))


def viewfusion(*args):
    return subprocess.run([sys.executable, "-m", "viewfusion_diffusers.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})


def test_generate_writes_a_reproducible_image_and_weight_maps(tiny_pipeline_32_dir, tmp_path):
    assert len(EXAMPLES) == 4
    outputs = []
    for name in ("a.png", "b.png"):
        result = viewfusion("generate", "--pipeline", tiny_pipeline_32_dir, "--views", *EXAMPLES[:2], "--azimuth", 90,
                            "--steps", 2, "--seed", 3, "--output", tmp_path / name, "--weights-output", tmp_path / f"w_{name}")
        assert result.returncode == 0, result.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    with PIL.Image.open(tmp_path / "a.png") as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    with PIL.Image.open(tmp_path / "w_a.png") as weights:
        assert weights.size == (32 * 5, 32)  # two inputs, the novel view, two weight maps
    other = viewfusion("generate", "--pipeline", tiny_pipeline_32_dir, "--views", *EXAMPLES[:2], "--azimuth", 90,
                       "--steps", 2, "--seed", 4, "--output", tmp_path / "c.png")
    assert other.returncode == 0 and (tmp_path / "c.png").read_bytes() != outputs[0]


def test_generate_several_samples(tiny_pipeline_32_dir, tmp_path):
    result = viewfusion("generate", "--pipeline", tiny_pipeline_32_dir, "--views", EXAMPLES[0], "--azimuth", 0,
                        "--steps", 1, "--num-samples", 2, "--output", tmp_path / "novel.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "novel_0.png").exists() and (tmp_path / "novel_1.png").exists()


def test_orbit_writes_24_frames(tiny_pipeline_32_dir, tmp_path):
    result = viewfusion("orbit", "--pipeline", tiny_pipeline_32_dir, "--views", EXAMPLES[0], "--steps", 1,
                        "--max-views", 3, "--output", tmp_path / "orbit.gif")
    assert result.returncode == 0, result.stderr
    with PIL.Image.open(tmp_path / "orbit.gif") as gif:
        assert gif.n_frames == 24


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["generate", "--views", "missing.png", "--azimuth", "0", "--output", "x.png"], "does not exist"),
        (["generate", "--views", "NOT_AN_IMAGE", "--azimuth", "0", "--output", "x.png"], "cannot read"),
        (["generate", "--views", "--azimuth", "0", "--output", "x.png"], "expected at least one argument"),
        (["generate", "--views", EXAMPLES[0], "--azimuth", "0", "--output", "x.png", "--steps", "0"], "--steps must be at least 1"),
        (["orbit", "--views", EXAMPLES[0], "--output", "orbit.mp4"], "use a .gif name"),
        (["generate", "--views", EXAMPLES[0], "--azimuth", "0", "--output", "x.png", "--scheduler", "euler"], "invalid choice"),
    ],
)
def test_bad_input_gives_a_message_and_a_nonzero_exit(tiny_pipeline_32_dir, tmp_path, arguments, message):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    arguments = [str(not_an_image) if a == "NOT_AN_IMAGE" else a for a in arguments]
    result = viewfusion(*arguments, "--pipeline", tiny_pipeline_32_dir)
    assert result.returncode == 2
    assert message in result.stderr


def test_render_and_eval_are_reachable_as_subcommands():
    for command in ("render", "eval"):
        result = viewfusion(command, "--help")
        assert result.returncode == 0 and "--output_dir" in result.stdout
