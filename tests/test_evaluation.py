"""`viewfusion-eval` end to end on rendered objects with a tiny random pipeline."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from viewfusion_diffusers.data import EvalSample, NMRDataset
from viewfusion_diffusers.evaluation import evaluate_batch, main, nearest_input_view, parse_args, results_table

pytestmark = pytest.mark.usefixtures("lpips_weights_available")


def eval_args(pipeline_dir, data_dir, output_dir, *extra):
    return ["--pipeline", str(pipeline_dir), "--data_dir", str(data_dir), "--split", "train", "--num_views", "1", "3",
            "--num_objects", "3", "--num_inference_steps", "2", "--batch_size", "2", "--output_dir", str(output_dir), *extra]


def test_end_to_end_writes_results_and_is_deterministic(tiny_pipeline_32_dir, rendered_dataset, tmp_path):
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "a")) == 0
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "b")) == 0
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    second = json.loads((tmp_path / "b" / "results.json").read_text())
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]
    assert strip(first["records"]) == strip(second["records"])
    assert {r["method"] for r in first["records"]} == {"viewfusion", "equal_weights", "nearest_view", "mean_view"}
    assert len(first["records"]) == 4 * 3 * 2
    table = (tmp_path / "a" / "results.md").read_text()
    assert "| viewfusion | 3 | 3 |" in table and "LPIPS" in table and "Per category" in table
    assert (tmp_path / "a" / "grid_1_views.png").exists() and (tmp_path / "a" / "grid_3_views.png").exists()
    assert not [p for p in os.listdir(tmp_path / "a") if p.startswith(".tmp-")]


def test_two_processes_give_the_same_numbers_as_one(tiny_pipeline_32_dir, rendered_dataset, tmp_path):
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "one")) == 0
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533",
               "-m", "viewfusion_diffusers.evaluation", *eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "two")]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "results.json").read_text())["records"]
    two = json.loads((tmp_path / "two" / "results.json").read_text())["records"]
    assert len(one) == len(two)
    for a, b in zip(one, two):
        keys = ("method", "object_id", "num_views", "input_indices")
        assert [a[k] for k in keys] == [b[k] for k in keys]
        for metric in ("psnr", "ssim", "lpips"):
            # Batches differ between the runs; CPU kernels may round differently for other batch sizes.
            assert math.isclose(a[metric], b[metric], rel_tol=1e-4, abs_tol=1e-5), (metric, a, b)


def test_baselines_on_constructed_cases(tiny_pipeline_32_dir, rendered_dataset):
    from viewfusion_diffusers import ViewFusionPipeline
    from viewfusion_diffusers.metrics import LPIPS

    assert nearest_input_view((3, 20, 9), target_index=0) == 3
    assert nearest_input_view((4, 21), target_index=0) == 21  # 45 degrees the other way round beats 60
    dataset = NMRDataset(rendered_dataset, split="train")
    pipeline = ViewFusionPipeline.from_pretrained(tiny_pipeline_32_dir)
    pipeline.set_progress_bar_config(disable=True)
    sample = EvalSample(object_index=0, category=dataset.objects[0][0], object_id=dataset.objects[0][1],
                        target_index=5, input_indices=(5, 17), num_views=2)
    args = parse_args(["--pipeline", "x", "--data_dir", "x", "--output_dir", "x", "--num_inference_steps", "2", "--num_views", "2"])
    records, _ = evaluate_batch(pipeline, dataset, [sample], [0], args, LPIPS.from_pretrained(), torch.device("cpu"))
    nearest = next(r for r in records if r["method"] == "nearest_view")
    assert nearest["psnr"] == math.inf and nearest["lpips"] == pytest.approx(0, abs=1e-7) and nearest["ssim"] == pytest.approx(1)
    mean = next(r for r in records if r["method"] == "mean_view")
    assert math.isfinite(mean["psnr"])
    assert "inf (identical)" in results_table([nearest])
    # The nearest input is the target view itself, so the closest ground-truth view is at the requested azimuth.
    assert nearest["closest_view_error"] == 0 and "100% ± 0" in results_table([nearest])
    assert all(r["closest_view_error"] in range(0, 181, 15) for r in records)


def test_bad_inputs_give_clear_errors(tiny_pipeline_32_dir, rendered_dataset, tmp_path, capsys):
    assert main(eval_args(rendered_dataset, rendered_dataset, tmp_path)) == 2
    assert "no model_index.json" in capsys.readouterr().err
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path, "--split", "holdout")) == 2
    assert "holdout" in capsys.readouterr().err
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path, "--num_views", "30")) == 2
    assert "30" in capsys.readouterr().err


def test_sampler_study_compares_full_ddpm_with_fast_samplers(rendered_dataset, tmp_path):
    # A pipeline trained on a 50-step schedule keeps the full-DDPM reference cheap enough for a test.
    from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler
    from conftest import TINY_UNET_32

    torch.manual_seed(0)
    scheduler = default_scheduler()
    scheduler.register_to_config(num_train_timesteps=50)
    folder = tmp_path / "pipeline"
    ViewFusionPipeline(ViewFusionUNet2DModel(**TINY_UNET_32), type(scheduler).from_config(scheduler.config)).save_pretrained(folder)
    args = eval_args(folder, rendered_dataset, tmp_path / "out", "--sampler_study", "--sampler_study_samples", "2",
                     "--sampler_study_steps", "2", "50", "--sampler_study_schedulers", "ddim", "ddpm",
                     "--num_views", "2")
    assert main(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    settings = [(row["scheduler"], row["steps"]) for row in results["sampler_study"]]
    # DDPM at 50 steps is the reference itself, so it is not run twice.
    assert settings == [("ddpm", 50), ("ddim", 2), ("ddim", 50), ("ddpm", 2)]
    assert all(row["seconds_per_sample"] > 0 and len(row["lpips"]) == 2 and row["num_views"] == [2] for row in results["sampler_study"])
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "## Sampler study" in markdown
    ddpm, ddim_2 = results["sampler_study"][0], results["sampler_study"][1]
    paired = sum(a - b for a, b in zip(ddim_2["lpips_per_sample"], ddpm["lpips_per_sample"])) / 2
    assert f"| ddim | 2 | {ddim_2['seconds_per_sample']:.2f} |" in markdown and f"{paired:+.4f} ±" in markdown


def test_dropped_views_method_passes_its_threshold_to_the_pipeline(tiny_pipeline_32_dir, rendered_dataset):
    from viewfusion_diffusers import ViewFusionPipeline
    from viewfusion_diffusers.metrics import LPIPS

    dataset = NMRDataset(rendered_dataset, split="train")
    pipeline = ViewFusionPipeline.from_pretrained(tiny_pipeline_32_dir)
    pipeline.set_progress_bar_config(disable=True)
    sample = EvalSample(object_index=0, category=dataset.objects[0][0], object_id=dataset.objects[0][1],
                        target_index=5, input_indices=(1, 9, 17), num_views=3)
    lpips, methods = LPIPS.from_pretrained(), ("viewfusion", "dropped_views")
    lpips_of = {}
    for threshold in ("1e-12", "0.999"):
        args = parse_args(["--pipeline", "x", "--data_dir", "x", "--output_dir", "x", "--num_inference_steps", "3",
                           "--num_views", "3", "--drop_views_below", threshold])
        records, _ = evaluate_batch(pipeline, dataset, [sample], [0], args, lpips, torch.device("cpu"), weighted_methods=methods)
        lpips_of[threshold] = {r["method"]: r["lpips"] for r in records}
        assert "| dropped_views | 3 | 1 |" in results_table(records)
    # Nothing falls below 1e-12 of an equal share: the plain computation. Below 0.999, all but the best views go.
    assert lpips_of["1e-12"]["dropped_views"] == lpips_of["1e-12"]["viewfusion"]
    assert lpips_of["0.999"]["dropped_views"] != lpips_of["0.999"]["viewfusion"]
