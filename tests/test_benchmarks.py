"""The benchmark scripts run end to end (shipped pipeline or a tiny rendered dataset, a couple of steps) and write
their rows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from viewfusion_diffusers.training_utils import count_flops


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(script: str, *args, **env) -> subprocess.CompletedProcess:
    """`python examples/SCRIPT ARGS...` in a fresh interpreter, as a user runs it; `env` adds variables."""
    command = [sys.executable, str(EXAMPLES / script), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, **env})


def test_sampling_benchmark_writes_every_row(tmp_path):
    output = tmp_path / "sampling.json"
    # The shape of `viewfusion-eval --sampler_study`'s rows: the first is DDPM over all steps, the reference.
    study = [
        {
            "scheduler": "ddpm",
            "steps": 2000,
            "num_views": [2],
            "lpips": [0.275, 0.05],
            "lpips_per_sample": [0.25, 0.30],
        },
        {"scheduler": "ddim", "steps": 2, "num_views": [2], "lpips": [0.35, 0.1], "lpips_per_sample": [0.30, 0.40]},
    ]
    (tmp_path / "results.json").write_text(json.dumps({"sampler_study": study}))
    result = run_example(
        "benchmark_sampling.py",
        *"--models default --num_views 2 --samplers ddim:2 --variants channels_last objects:2".split(),
        *"--reference_steps 1 --repeats 1".split(),
        *("--quality", tmp_path / "results.json", "--output", output),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(output.read_text())["rows"]
    methods = [row["method"] for row in rows]
    assert methods == [
        "reference (per view, DDPM)",
        "batched (ddim)",
        "batched/vbs=2 (ddim)",
        "batched (ddim) + channels_last",
        "batched (ddim) + objects:2",
    ]
    assert all(row["seconds"] > 0 and 0 <= row["outside_unet"] <= 1 for row in rows)
    # The U-Net's arithmetic: one FLOP count per pair, so the rate is that count times pairs and steps over the time.
    flops = {row["unet_gflops_per_pair"] for row in rows}
    assert len(flops) == 1 and flops.pop() > 0
    batched = rows[1]
    assert abs(batched["tflops"] - batched["unet_gflops_per_pair"] * 2 * 2 / batched["seconds"] / 1e3) < 1e-9
    assert batched["share_of_peak"] is None  # CPU: no known peak
    # Paired difference: mean of (0.05, 0.10), 95% CI 1.96 * std / sqrt(2).
    assert rows[0]["lpips"] == "0.275" and rows[1]["lpips"] == rows[2]["lpips"] == "0.350 (+0.075 ± 0.049)"
    assert "| default | 2 | batched (ddim) + objects:2 | 2 |" in result.stdout


def test_sampling_benchmark_times_the_authors_network(tmp_path):
    output = tmp_path / "sampling.json"
    result = run_example(
        "benchmark_sampling.py",
        *"--models original --num_views 1 --samplers ddpm:1 --reference_steps 1 --repeats 1".split(),
        *("--output", output),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(output.read_text())["rows"]
    assert [row["model"] for row in rows] == ["original"] * 3
    assert rows[0]["steps"] == 2000 and rows[1]["steps"] == 1  # the authors' schedule, and the pipeline's sampler
    # FLOPs of one pair of the authors' 33.9M network at 64x64: billions, an order above the `small` preset's.
    assert rows[0]["unet_gflops_per_pair"] > 5


@pytest.mark.parametrize(
    "sampler, variant, error",
    [
        ("ddim:1", "fp8", "unknown variant 'fp8'"),
        ("euler:1", "channels_last", "bad sampler 'euler:1'"),
        ("ddim:1", "compile:fastest", "unknown compile mode in 'compile:fastest'"),
    ],
)
def test_sampling_benchmark_rejects_an_unknown_variant_or_sampler(sampler, variant, error):
    result = run_example(
        "benchmark_sampling.py",
        *"--models default --num_views 1 --reference_steps 1 --repeats 1".split(),
        *("--samplers", sampler, "--variants", variant),
    )
    assert result.returncode == 2 and error in result.stderr


def test_sampling_benchmark_refuses_results_without_a_sampler_study(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"sampler_study": None, "config": {"num_views": [6]}}))
    result = run_example(
        "benchmark_sampling.py",
        *"--models default --num_views 1 --samplers ddpm:1".split(),
        *("--quality", tmp_path / "results.json"),
    )
    assert result.returncode == 2 and "has no sampler study" in result.stderr


def test_sampling_benchmark_reports_the_share_of_a_given_peak(tmp_path):
    output = tmp_path / "sampling.json"
    result = run_example(
        "benchmark_sampling.py",
        *"--models default --num_views 1 --samplers ddpm:1 --reference_steps 1 --repeats 1".split(),
        *("--peak_tflops", 0.5, "--output", output),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["peak_tflops"] == 0.5
    assert all(row["share_of_peak"] is not None and row["share_of_peak"] > 0 for row in results["rows"])


def test_flop_count_of_a_convolution_is_the_hand_count():
    conv = torch.nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False)
    images = torch.randn(2, 3, 8, 8, requires_grad=True)
    # Each of the 2 x 4 x 8 x 8 outputs is a 3 x 3 x 3 dot product: 27 multiplies and 27 adds.
    forward = 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3)
    assert count_flops(lambda: conv(images)) == forward
    # Backward: the same products again for the input's gradient and for the weight's.
    assert count_flops(lambda: conv(images).sum().backward()) == 3 * forward


@pytest.mark.parametrize("data", ["memory", "stream"])
def test_training_benchmark_runs_the_real_data_path(rendered_dataset, tmp_path, data):
    output = tmp_path / "training.json"
    result = run_example(
        "benchmark_training.py",
        *"--presets small --resolution 32 --batch_size 2 --steps 2 --warmup 1 --peak_tflops 1.0".split(),
        *("--data_dir", rendered_dataset, "--output", output),
        *(["--stream_data", "--num_workers", "0"] if data == "stream" else []),
        OMP_NUM_THREADS="1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(output.read_text())["rows"]
    assert row["preset"] == "small" and row["samples_per_second"] > 0
    assert 2 <= row["view_pairs_per_second"] * row["seconds_per_step"] <= 12  # 2 samples of 1..6 views
    assert row["gflops_per_pair"] > 0 and row["share_of_peak"] is not None and row["share_of_peak"] > 0
    assert ("streamed" if data == "stream" else "in memory") in result.stdout


def test_data_benchmark_times_the_loader_and_the_in_memory_sampler(rendered_dataset, tmp_path):
    output = tmp_path / "data.json"
    result = run_example(
        "benchmark_data.py",
        *"--render_objects 1 --batch_size 2 --num_batches 2".split(),
        *("--data_dir", rendered_dataset, "--output", output),
        OMP_NUM_THREADS="1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())["results"]
    assert results["render_seconds_per_object"] > 0 and results["in_memory_load_seconds"] > 0
    assert results["in_memory_samples_per_second"] > 0 and results["loader_samples_per_second_2_workers"] > 0


@pytest.mark.usefixtures("lpips_weights_available")
def test_evaluation_benchmark_times_both_modes_and_both_layouts_on_the_same_noise(rendered_dataset, tmp_path):
    from conftest import TINY_UNET_32, default_scheduler

    from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel

    torch.manual_seed(0)
    unet = ViewFusionUNet2DModel(**{**TINY_UNET_32, "relative_pose": True})
    ViewFusionPipeline(unet, default_scheduler()).save_pretrained(tmp_path / "posed")
    output = tmp_path / "evaluation.json"
    result = run_example(
        "benchmark_evaluation.py",
        *"--num_objects 1 --num_views 1 3 --num_inference_steps 2 --threads 1".split(),
        *("--pipeline", tmp_path / "posed", "--data_dir", rendered_dataset, "--output", output),
        HF_HUB_OFFLINE="1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads(output.read_text())
    assert [row["layout"] for row in written["rows"]] == ["nchw", "channels_last"]
    for row in written["rows"]:
        assert row["viewfusion_seconds"] > 0 and row["viewfusion_posed_seconds"] > 0 and row["scoring_seconds"] > 0
        assert 0 < row["scoring_share"] < 1
    assert written["max_lpips_difference"] < 1e-4  # the same samples and noise in both layouts
    assert "| channels_last |" in result.stdout and "largest LPIPS difference" in result.stdout
