"""The benchmark scripts run end to end (on the shipped pipeline, with a couple of steps) and write their rows."""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_sampling_benchmark_writes_every_row(tmp_path):
    output = tmp_path / "sampling.json"
    # The shape of `viewfusion-eval --sampler_study`'s rows: the first is DDPM over all steps, the reference.
    study = [{"scheduler": "ddpm", "steps": 2000, "num_views": [2], "lpips": [0.275, 0.05], "lpips_per_sample": [0.25, 0.30]},
             {"scheduler": "ddim", "steps": 2, "num_views": [2], "lpips": [0.35, 0.1], "lpips_per_sample": [0.30, 0.40]}]
    (tmp_path / "results.json").write_text(json.dumps({"sampler_study": study}))
    command = [sys.executable, str(EXAMPLES / "benchmark_sampling.py"), "--models", "default", "--num_views", "2",
               "--samplers", "ddim:2", "--variants", "channels_last", "drop:0.5", "objects:2",
               "--reference_steps", "1", "--repeats", "1", "--quality", str(tmp_path / "results.json"),
               "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(output.read_text())["rows"]
    methods = [row["method"] for row in rows]
    assert methods == ["reference (per view, DDPM)", "batched (ddim)", "batched/vbs=2 (ddim)", "batched (ddim) + channels_last",
                       "batched (ddim) + drop:0.5", "batched (ddim) + objects:2"]
    assert all(row["seconds"] > 0 and 0 <= row["outside_unet"] <= 1 for row in rows)
    # Paired difference: mean of (0.05, 0.10), 95% CI 1.96 * std / sqrt(2).
    assert rows[0]["lpips"] == "0.275" and rows[1]["lpips"] == rows[2]["lpips"] == "0.350 (+0.075 ± 0.049)"
    assert "| default | 2 | batched (ddim) + objects:2 | 2 |" in result.stdout


def test_sampling_benchmark_rejects_an_unknown_variant_or_sampler():
    command = [sys.executable, str(EXAMPLES / "benchmark_sampling.py"), "--models", "default", "--num_views", "1",
               "--samplers", "ddim:1", "--variants", "fp8", "--reference_steps", "1", "--repeats", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "unknown variant 'fp8'" in result.stderr
    command[command.index("fp8")] = "channels_last"
    command[command.index("ddim:1")] = "euler:1"
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "bad sampler 'euler:1'" in result.stderr


def test_sampling_benchmark_refuses_results_without_a_sampler_study(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"sampler_study": None, "config": {"num_views": [6]}}))
    command = [sys.executable, str(EXAMPLES / "benchmark_sampling.py"), "--models", "default", "--num_views", "1",
               "--samplers", "ddpm:1", "--quality", str(tmp_path / "results.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "has no sampler study" in result.stderr
