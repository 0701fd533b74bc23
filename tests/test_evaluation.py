"""`viewfusion-eval` end to end on rendered objects with tiny random pipelines, and its parts on constructed cases."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

from viewfusion_diffusers.data import EvalSample, NMRDataset
from viewfusion_diffusers.evaluation import (
    EvalBatch,
    evaluate_batch,
    labelled_grid,
    main,
    nearest_input_view,
    paired_differences,
    parse_args,
    results_table,
)
from viewfusion_diffusers.evaluation.report import HEADER_HEIGHT, paired_table
from viewfusion_diffusers.evaluation.statistics import check_comparable
from viewfusion_diffusers.images import comparison_row


lpips_needed = pytest.mark.usefixtures("lpips_weights_available")


def eval_args(pipeline_dir, data_dir, output_dir, *extra):
    return [
        "--pipeline",
        str(pipeline_dir),
        "--data_dir",
        str(data_dir),
        "--split",
        "train",
        "--num_views",
        "1",
        "3",
        "--num_objects",
        "3",
        "--num_inference_steps",
        "2",
        "--batch_size",
        "2",
        "--output_dir",
        str(output_dir),
        *map(str, extra),
    ]


@lpips_needed
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
    # The paired table: each method against the nearest view, the learned weights against equal ones, per N.
    assert "| viewfusion − nearest_view | 1 | 3 |" in table and "| viewfusion − equal_weights | 3 | 3 |" in table
    with PIL.Image.open(tmp_path / "a" / "grid_3_views.png") as grid:
        # A header row over 3 samples; 3 input slots | output | truth | 3 weight maps of 32 pixels.
        assert grid.size == (32 * 8, HEADER_HEIGHT + 3 * 32)
        header = np.asarray(grid.convert("RGB"))[:HEADER_HEIGHT]
    assert (header < 128).any(), "the header row has no text"
    assert (tmp_path / "a" / "grid_1_views.png").exists() and not (tmp_path / "a" / "grid_1_views_posed.png").exists()
    assert not [p for p in os.listdir(tmp_path / "a") if p.startswith(".tmp-")]


@lpips_needed
def test_channels_last_scores_what_nchw_scores(tiny_pipeline_32_dir, rendered_dataset, tmp_path):
    """NHWC, the default for speed, changes the U-Net's memory layout only: the same numbers up to rounding."""
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "nhwc", "--num_inference_steps", 4)) == 0
    extra = ("--num_inference_steps", 4, "--no-channels_last")
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "nchw", *extra)) == 0
    nhwc = json.loads((tmp_path / "nhwc" / "results.json").read_text())
    nchw = json.loads((tmp_path / "nchw" / "results.json").read_text())
    assert (nhwc["config"]["channels_last"], nchw["config"]["channels_last"]) == (True, False)
    assert len(nhwc["records"]) == len(nchw["records"]) == 4 * 3 * 2
    for fast, plain in zip(nhwc["records"], nchw["records"]):
        assert (fast["method"], fast["object_id"], fast["num_views"]) == (
            plain["method"],
            plain["object_id"],
            plain["num_views"],
        )
        assert fast["lpips"] == pytest.approx(plain["lpips"], abs=1e-4)
        assert fast["psnr"] == pytest.approx(plain["psnr"], abs=1e-3)
        assert fast["closest_view_error"] == plain["closest_view_error"]


@lpips_needed
def test_compare_to_pairs_this_run_with_another_on_the_same_samples(
    tiny_pipeline_32_dir, rendered_dataset, tmp_path, capsys
):
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "old", "--num_views", 1)) == 0
    old = tmp_path / "old" / "results.json"
    assert (
        main(
            eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "new", "--num_views", 1, "--compare_to", old)
        )
        == 0
    )
    markdown = (tmp_path / "new" / "results.md").read_text()
    # The same weights and noise: every per-sample difference is zero.
    assert (
        "(paired, same samples and noise)" in markdown
        and "| viewfusion | 1 | 3 | +0.0000 ± 0.0000 | no clear difference |" in markdown
    )
    capsys.readouterr()
    assert (
        main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "other", "--compare_to", old, "--seed", "1"))
        == 2
    )
    assert "seed" in capsys.readouterr().err
    assert not (tmp_path / "other" / "results.json").exists()


@lpips_needed
def test_two_processes_give_the_same_numbers_as_one(tiny_pipeline_32_dir, rendered_dataset, tmp_path):
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "one")) == 0
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "2",
        "--cpu",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29533",
        "-m",
        "viewfusion_diffusers.evaluation",
        *eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "two"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600
    )
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


def one_sample(dataset, target_index, input_indices):
    return EvalSample(
        object_index=0,
        category=dataset.objects[0][0],
        object_id=dataset.objects[0][1],
        target_index=target_index,
        input_indices=tuple(input_indices),
        num_views=len(input_indices),
    )


@lpips_needed
def test_baselines_on_constructed_cases(tiny_pipeline_32_dir, rendered_dataset):
    from viewfusion_diffusers import ViewFusionPipeline
    from viewfusion_diffusers.metrics import LPIPS

    assert nearest_input_view((3, 20, 9), target_index=0) == 3
    assert nearest_input_view((4, 21), target_index=0) == 21  # 45 degrees the other way round beats 60
    dataset = NMRDataset(rendered_dataset, split="train")
    pipeline = ViewFusionPipeline.from_pretrained(tiny_pipeline_32_dir)
    pipeline.set_progress_bar_config(disable=True)
    batch = EvalBatch.load(dataset, [one_sample(dataset, 5, (5, 17))])
    assert batch.input_azimuths == [[75.0, 255.0]] and batch.target_azimuths == [75.0]
    records, grids = evaluate_batch(pipeline, batch, [0], LPIPS.from_pretrained(), num_inference_steps=2)
    nearest = next(r for r in records if r["method"] == "nearest_view")
    assert (
        nearest["psnr"] == math.inf
        and nearest["lpips"] == pytest.approx(0, abs=1e-7)
        and nearest["ssim"] == pytest.approx(1)
    )
    mean = next(r for r in records if r["method"] == "mean_view")
    assert math.isfinite(mean["psnr"])
    assert "inf (identical)" in results_table([nearest])
    # The nearest input is the target view itself, so the closest true view is at the requested azimuth.
    assert nearest["closest_view_error"] == 0 and "100% ± 0" in results_table([nearest])
    assert all(r["closest_view_error"] in range(0, 181, 15) for r in records)
    assert list(grids) == ["viewfusion"] and grids["viewfusion"][0][0] == 2


@lpips_needed
def test_pose_scoring_and_lpips_match_the_pairwise_computation(tiny_pipeline_32_dir, rendered_dataset):
    """Records built from each object's view features computed once equal LPIPS and closest-view errors computed
    pair by pair against all 24 views (the earlier way), to float rounding."""
    from viewfusion_diffusers.evaluation import score_predictions
    from viewfusion_diffusers.evaluation.samples import circular_view_distance
    from viewfusion_diffusers.metrics import LPIPS

    dataset = NMRDataset(rendered_dataset, split="train")
    samples = [
        EvalSample(
            object_index=k,
            category=dataset.objects[k][0],
            object_id=dataset.objects[k][1],
            target_index=t,
            input_indices=(1, 13),
            num_views=2,
        )
        for k, t in ((0, 5), (1, 20), (1, 7))
    ]
    batch = EvalBatch.load(dataset, samples)
    generator = torch.Generator().manual_seed(0)
    # A slightly noisy copy of each sample's view 3 steps (45 degrees) from its target, and a random image.
    shifted = torch.stack(
        [
            (views[(s.target_index + 3) % 24] + 0.05 * torch.randn(3, 32, 32, generator=generator)).clamp(0, 1)
            for views, s in zip(batch.object_views, samples)
        ]
    )
    predictions = {"shifted": shifted, "random": torch.rand(3, 3, 32, 32, generator=generator)}
    lpips = LPIPS.from_pretrained()
    records = score_predictions(batch, predictions, lpips)
    for record in records:
        i = next(
            k
            for k, s in enumerate(samples)
            if (s.object_id, s.target_index) == (record["object_id"], record["target_index"])
        )
        image, views = predictions[record["method"]][i], batch.object_views[i]
        pairwise = lpips(image[None].expand(24, -1, -1, -1), views)
        assert record["lpips"] == pytest.approx(pairwise[samples[i].target_index].item(), abs=1e-6)
        closest = circular_view_distance(int(pairwise.argmin()), samples[i].target_index)
        assert record["closest_view_error"] == 15 * closest
    assert [r["closest_view_error"] for r in records if r["method"] == "shifted"] == [45, 45, 45]


@lpips_needed
def test_methods_option_samples_only_the_named_methods(tiny_pipeline_32_dir, rendered_dataset, tmp_path, capsys):
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "all", "--num_views", 1)) == 0
    assert (
        main(
            eval_args(
                tiny_pipeline_32_dir,
                rendered_dataset,
                tmp_path / "some",
                "--num_views",
                1,
                "--methods",
                "viewfusion",
                "--compare_to",
                tmp_path / "all" / "results.json",
            )
        )
        == 0
    )
    every = json.loads((tmp_path / "all" / "results.json").read_text())
    some = json.loads((tmp_path / "some" / "results.json").read_text())
    assert {r["method"] for r in some["records"]} == {"viewfusion", "nearest_view", "mean_view"}
    assert some["config"]["methods"] == ["viewfusion"]
    drop_seconds = lambda records, method: [
        {k: v for k, v in r.items() if k != "seconds"} for r in records if r["method"] == method
    ]
    assert drop_seconds(some["records"], "viewfusion") == drop_seconds(every["records"], "viewfusion")
    capsys.readouterr()
    assert (
        main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path / "bad", "--methods", "viewfusion_posed")) == 2
    )
    assert "need --posed" in capsys.readouterr().err


@lpips_needed
def test_bad_inputs_give_clear_errors(tiny_pipeline_32_dir, rendered_dataset, tmp_path, capsys):
    assert main(eval_args(rendered_dataset, rendered_dataset, tmp_path)) == 2
    assert "no model_index.json" in capsys.readouterr().err
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path, "--split", "holdout")) == 2
    assert "holdout" in capsys.readouterr().err
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path, "--num_views", "30")) == 2
    assert "30" in capsys.readouterr().err
    assert main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path, "--posed")) == 2
    assert "posed=True needs a pipeline whose U-Net takes poses (relative_pose=True" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(eval_args(tiny_pipeline_32_dir, rendered_dataset, tmp_path, "--compare_to", tmp_path / "missing.json"))
    assert "--compare_to" in capsys.readouterr().err


def test_output_dir_and_pipeline_have_defaults():
    from viewfusion_diffusers.constants import DEFAULT_PIPELINE

    args = parse_args(["--data_dir", "data/pybullet-64", "--split", "val"])
    assert args.pipeline == DEFAULT_PIPELINE
    assert args.output_dir == os.path.join("eval", "viewfusion-pybullet-64-val")
    assert parse_args(["--data_dir", "d", "--pipeline", "runs/x/pipeline/", "--output_dir", "o"]).output_dir == "o"
    assert parse_args(["--data_dir", "d", "--pipeline", "runs/x/pipeline/"]).output_dir == os.path.join(
        "eval", "pipeline-test"
    )


def record(method, num_views, object_id, lpips):
    return {
        "method": method,
        "num_views": num_views,
        "category": "c",
        "object_id": object_id,
        "target_index": 0,
        "input_indices": list(range(1, num_views + 1)),
        "lpips": lpips,
    }


def test_paired_differences_are_per_sample_and_refuse_unpaired_samples():
    records = [
        record("viewfusion", 1, "a", 0.3),
        record("viewfusion", 1, "b", 0.5),
        record("nearest_view", 1, "b", 0.4),
        record("nearest_view", 1, "a", 0.1),
    ]
    assert paired_differences(records, "viewfusion", "nearest_view")[1].tolist() == pytest.approx([0.2, 0.1])
    assert "| viewfusion − nearest_view | 1 | 2 | +0.1500 ± 0.0980 | higher |" in paired_table(records)
    with pytest.raises(ValueError, match="different samples with 1 views"):
        paired_differences(records + [record("viewfusion", 1, "c", 0.2)], "viewfusion", "nearest_view")
    config = {"data_dir": "d", "split": "test", "categories": None, "seed": 0, "num_objects": 5}
    check_comparable(config, dict(config))
    with pytest.raises(ValueError, match="num_objects"):
        check_comparable(config, {**config, "num_objects": 6})


def test_labelled_grid_names_the_columns_and_checks_the_slots():
    view = np.zeros((32, 32, 3), np.uint8)
    row = comparison_row([view, view], view, view, np.ones((2, 3, 32, 32)), num_slots=2)
    grid = labelled_grid([row, row], num_slots=2)
    assert grid.shape == (HEADER_HEIGHT + 64, 32 * 6, 3)
    # Every column has its label: some dark pixels in each 32-pixel cell of the header.
    assert all((grid[:HEADER_HEIGHT, 32 * i : 32 * (i + 1)] < 128).any() for i in range(6))
    without_truth = comparison_row([view], view, None, np.ones((1, 3, 32, 32)), num_slots=1)
    assert labelled_grid([without_truth], num_slots=1, with_truth=False).shape == (HEADER_HEIGHT + 32, 32 * 3, 3)
    with pytest.raises(ValueError, match="num_slots"):
        labelled_grid([row], num_slots=3)


@lpips_needed
def test_sampler_study_compares_full_ddpm_with_fast_samplers(rendered_dataset, tmp_path):
    # A pipeline trained on a 50-step schedule keeps the full-DDPM reference cheap enough for a test.
    from conftest import TINY_UNET_32

    from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler

    torch.manual_seed(0)
    scheduler = default_scheduler()
    scheduler.register_to_config(num_train_timesteps=50)
    folder = tmp_path / "pipeline"
    ViewFusionPipeline(
        ViewFusionUNet2DModel(**TINY_UNET_32), type(scheduler).from_config(scheduler.config)
    ).save_pretrained(folder)
    args = eval_args(
        folder,
        rendered_dataset,
        tmp_path / "out",
        "--sampler_study",
        "--sampler_study_samples",
        "2",
        "--sampler_study_steps",
        "2",
        "50",
        "--sampler_study_schedulers",
        "ddim",
        "ddpm",
        "--num_views",
        "2",
    )
    assert main(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    settings = [(row["scheduler"], row["steps"]) for row in results["sampler_study"]]
    # DDPM at 50 steps is the reference itself, so it is not run twice.
    assert settings == [("ddpm", 50), ("ddim", 2), ("ddim", 50), ("ddpm", 2)]
    assert all(
        row["seconds_per_sample"] > 0 and len(row["lpips"]) == 2 and row["num_views"] == [2]
        for row in results["sampler_study"]
    )
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "## Sampler study" in markdown
    ddpm, ddim_2 = results["sampler_study"][0], results["sampler_study"][1]
    paired = sum(a - b for a, b in zip(ddim_2["lpips_per_sample"], ddpm["lpips_per_sample"])) / 2
    assert f"| ddim | 2 | {ddim_2['seconds_per_sample']:.2f} |" in markdown and f"{paired:+.4f} ±" in markdown


def test_fingerprint_is_the_same_whatever_path_the_weights_are_loaded_from(
    tiny_pipeline_32_dir, tmp_path, monkeypatch
):
    from viewfusion_diffusers import ViewFusionPipeline
    from viewfusion_diffusers.evaluation import pipeline_fingerprint

    monkeypatch.chdir(tmp_path.parent)
    relative = os.path.join(".", os.path.relpath(tiny_pipeline_32_dir, tmp_path.parent))
    from_absolute = ViewFusionPipeline.from_pretrained(str(tiny_pipeline_32_dir))
    from_relative = ViewFusionPipeline.from_pretrained(relative)
    assert from_absolute.unet.config._name_or_path != from_relative.unet.config._name_or_path
    assert pipeline_fingerprint(from_absolute) == pipeline_fingerprint(from_relative)
    with torch.no_grad():
        next(from_relative.unet.parameters()).add_(1.0)
    assert pipeline_fingerprint(from_absolute) != pipeline_fingerprint(from_relative)
