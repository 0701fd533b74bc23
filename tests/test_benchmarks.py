"""The benchmark scripts run end to end (on the shipped pipeline, with a couple of steps) and write their rows."""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_sampling_benchmark_writes_every_row(tmp_path):
    output = tmp_path / "sampling.json"
    command = [sys.executable, str(EXAMPLES / "benchmark_sampling.py"), "--models", "default", "--num_views", "2",
               "--samplers", "ddim:2", "--variants", "channels_last", "drop:0.5", "objects:2",
               "--reference_steps", "1", "--repeats", "1", "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(output.read_text())["rows"]
    methods = [row["method"] for row in rows]
    assert methods == ["reference (per view, DDPM)", "batched (ddim)", "batched/vbs=2 (ddim)", "batched (ddim) + channels_last",
                       "batched (ddim) + drop:0.5", "batched (ddim) + objects:2"]
    assert all(row["seconds"] > 0 and 0 <= row["outside_unet"] <= 1 for row in rows)
    assert "| default | 2 | batched (ddim) + objects:2 | 2 |" in result.stdout


def test_sampling_benchmark_rejects_an_unknown_variant():
    command = [sys.executable, str(EXAMPLES / "benchmark_sampling.py"), "--models", "default", "--num_views", "1",
               "--samplers", "ddim:1", "--variants", "fp8", "--reference_steps", "1", "--repeats", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "unknown variant 'fp8'" in result.stderr
