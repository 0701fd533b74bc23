"""A damaged or partial pipeline folder is reported in one line naming the file and the fix, from Python and from
the command line, before diffusers' loader sees it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from viewfusion_diffusers import ViewFusionPipeline
from viewfusion_diffusers.hub_utils import PipelineFolderError, check_pipeline_folder


VIEW = Path(__file__).resolve().parent.parent / "examples" / "views" / "object025_az000.png"
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def truncate_weights(folder):
    path = folder / WEIGHTS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return WEIGHTS


def truncate_header(folder):
    (folder / WEIGHTS).write_bytes(b"\x10\x00")
    return WEIGHTS


def break_unet_config(folder):
    path = folder / "unet" / "config.json"
    path.write_text(path.read_text()[:-20])
    return "unet/config.json"


def break_index(folder):
    (folder / "model_index.json").write_text("[1, 2]")
    return "model_index.json"


def remove_scheduler(folder):
    shutil.rmtree(folder / "scheduler")
    return "scheduler"


def widen_unet_config(folder):
    path = folder / "unet" / "config.json"
    config = json.loads(path.read_text())
    config["block_out_channels"] = [2 * width for width in config["block_out_channels"]]
    path.write_text(json.dumps(config))
    return ""


DAMAGES = {
    "truncated weights": (truncate_weights, "is truncated or not a safetensors file"),
    "truncated header": (truncate_header, "is truncated or not a safetensors file"),
    "malformed config": (break_unet_config, "is not valid JSON"),
    "index not an object": (break_index, "holds a JSON list"),
    "missing component": (remove_scheduler, "is missing (model_index.json names it)"),
    "weights of other shapes": (widen_unet_config, "the weights do not match their config.json"),
}


@pytest.fixture
def damaged(request, tiny_pipeline_32_dir, tmp_path):
    damage, message = DAMAGES[request.param]
    folder = tmp_path / "pipeline"
    shutil.copytree(tiny_pipeline_32_dir, folder)
    return folder, damage(folder), message


@pytest.mark.parametrize("damaged", list(DAMAGES), indirect=True)
def test_python_names_the_damaged_file_and_the_fix(damaged):
    folder, name, message = damaged
    with pytest.raises(PipelineFolderError, match="download the folder again") as error:
        ViewFusionPipeline.from_pretrained(folder)
    assert str(folder / name).rstrip("/") in str(error.value) and message in str(error.value)


@pytest.mark.parametrize(
    "damaged", ["truncated weights", "malformed config", "weights of other shapes"], indirect=True
)
def test_every_command_reports_it_in_one_line(damaged, tmp_path):
    folder, name, message = damaged
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for command in (
        ["generate", "--azimuth", "90", "--output", str(tmp_path / "x.png")],
        ["orbit", "--output", str(tmp_path / "x.gif")],
    ):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "viewfusion_diffusers.cli",
                *command,
                "--views",
                str(VIEW),
                "--pipeline",
                str(folder),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 2, result.stderr
        # diffusers' "Loading pipeline components" progress bar may come first; the error is one line.
        lines = [
            line for line in result.stderr.strip().splitlines() if not line.startswith("Loading pipeline components")
        ]
        assert len(lines) == 1 and message in lines[0] and str(folder / name).rstrip("/") in lines[0], result.stderr
        assert "Traceback" not in result.stderr
        assert not list(tmp_path.glob("x.*"))


def test_a_whole_folder_passes_the_check(tiny_pipeline_32_dir):
    assert check_pipeline_folder(str(tiny_pipeline_32_dir))["_class_name"] == "ViewFusionPipeline"


def test_a_component_saved_as_absent_needs_no_folder(tiny_pipeline_32_dir, tmp_path):
    folder = tmp_path / "pipeline"
    shutil.copytree(tiny_pipeline_32_dir, folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "safety_checker": [None, None]}))
    assert "safety_checker" in check_pipeline_folder(str(folder))
    (folder / "model_index.json").write_text(json.dumps({**index, "safety_checker": ["diffusers", "Checker"]}))
    with pytest.raises(PipelineFolderError, match="safety_checker is missing"):
        check_pipeline_folder(str(folder))
