#!/usr/bin/env python
"""The state of the default model's training campaign, kept in the repository (`training/state/`).

The state is a pipeline folder that `--pretrained_model_name_or_path` loads (`model_index.json`, `scheduler/`,
`unet/` with the raw fp32 weights), plus `unet_ema/` (the EMA in fp16, with its step count, for `--ema_from`) and
`totals.json` (what the whole lineage has cost: samples seen, optimizer steps, CPU core-hours, GPU-hours, and one
entry per run). About 26 MB; Adam's moments would double that, so each run starts a fresh optimizer with a short
warm-up.

    python training/campaign_state.py begin training/state runs/campaign    # before a run: remember the totals
    python training/campaign_state.py export runs/campaign training/state   # the newest checkpoint into the state
    python training/campaign_state.py init RUN training/state --totals_before totals.json   # a new lineage

`export` may be run at any time, also while the run goes on: it reads the newest complete checkpoint and adds
its progress to the totals remembered by `begin`, so exporting twice counts nothing twice.
"""

import argparse
import datetime
import json
import os
import shutil
from pathlib import Path

import torch

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from viewfusion_diffusers.file_utils import atomic_directory, atomic_write


TOTALS_FILE = "totals.json"
START_FILE = "campaign_start.json"
PROGRESS_FILE = "training_progress.json"  # written into each checkpoint by train_viewfusion.py


def newest_checkpoint(run_dir) -> Path:
    """The complete `checkpoint-N` of `run_dir` with the highest N.

    Example:
        ```py
        >>> for step in (400, 800, 1200):  # as the run writes them, every --checkpointing_steps
        ...     os.makedirs(f"runs/campaign/checkpoint-{step}")
        >>> os.makedirs("runs/campaign/.tmp-checkpoint-1600")  # one still being written does not count
        >>> newest_checkpoint("runs/campaign").name  # by step, not by name: 1200 is newer than 800
        'checkpoint-1200'
        ```
    """
    checkpoints = [p for p in Path(run_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    if not checkpoints:
        raise ValueError(f"{run_dir} has no checkpoint yet; export after the run has written one.")
    return max(checkpoints, key=lambda p: int(p.name.split("-", 1)[1]))


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def begin(state_dir, run_dir) -> dict:
    """Remember the state's totals in `run_dir` before a run, unless this run already did (a restarted run keeps
    the totals of its first start). Returns them.

    Example:
        ```py
        >>> with atomic_write("training/state/totals.json", "w") as f:  # the state's totals, as `export` writes them
        ...     json.dump({"samples_seen": 143304, "optimizer_steps": 3913, "cpu_core_hours": 1.42, "gpu_hours": 0.1,
        ...                "runs": []}, f)
        >>> begin("training/state", "runs/campaign")["samples_seen"]
        143304
        >>> os.listdir("runs/campaign")  # a restarted run keeps these, whatever the state says by then
        ['campaign_start.json']
        ```
    """
    start = Path(run_dir) / START_FILE
    if not start.exists():
        totals = read_json(Path(state_dir) / TOTALS_FILE)
        with atomic_write(start, "w") as f:
            json.dump(totals, f, indent=1)
    return read_json(start)


def updated_totals(before: dict, progress: dict, run_name: str, recipe: str) -> dict:
    """`before` plus one run's `progress` (a checkpoint's `training_progress.json`), the run listed by name.

    Example:
        ```py
        >>> updated_totals({"samples_seen": 100, "optimizer_steps": 10, "cpu_core_hours": 1.0, "gpu_hours": 0.0,
        ...                 "runs": []}, {"global_step": 5, "samples_seen": 40, "cpu_core_seconds": 3600.0,
        ...                 "gpu_seconds": 0.0}, "run", "recipe")["cpu_core_hours"]
        2.0
        ```
    """
    run = {
        "run": run_name,
        "recipe": recipe,
        "exported": datetime.date.today().isoformat(),
        "optimizer_steps": progress["global_step"],
        "samples_seen": progress["samples_seen"],
        "cpu_core_hours": round(progress["cpu_core_seconds"] / 3600, 3),
        "gpu_hours": round(progress["gpu_seconds"] / 3600, 3),
    }
    return {
        **before,
        "samples_seen": before["samples_seen"] + run["samples_seen"],
        "optimizer_steps": before["optimizer_steps"] + run["optimizer_steps"],
        "cpu_core_hours": round(before["cpu_core_hours"] + run["cpu_core_hours"], 3),
        "gpu_hours": round(before["gpu_hours"] + run["gpu_hours"], 3),
        "runs": [*before.get("runs", []), run],
    }


def write_state(checkpoint: Path, scheduler_from, state_dir, totals: dict) -> None:
    """Write a checkpoint's raw U-Net (fp32), its EMA (fp16) and `totals` as the state folder, all or nothing."""
    state_dir = Path(state_dir)
    unet = ViewFusionUNet2DModel.from_pretrained(checkpoint, subfolder="unet")
    scheduler = ViewFusionPipeline.from_pretrained(scheduler_from).scheduler
    new, old = state_dir.with_name(f".new-{state_dir.name}"), state_dir.with_name(f".old-{state_dir.name}")
    shutil.rmtree(new, ignore_errors=True)
    with atomic_directory(new) as staging:
        ViewFusionPipeline(unet=unet, scheduler=scheduler).save_pretrained(staging)
        ema = ViewFusionUNet2DModel.from_pretrained(checkpoint, subfolder="unet_ema")
        # The EMA's bookkeeping (step count, decay settings) lives in its config and survives the cast.
        ema.to(torch.float16).save_pretrained(os.path.join(staging, "unet_ema"))
        with open(os.path.join(staging, TOTALS_FILE), "w") as f:
            json.dump(totals, f, indent=1)
    # Swapped in by two renames: the state is whole before and after, never a mix of two.
    shutil.rmtree(old, ignore_errors=True)
    if state_dir.exists():
        os.rename(state_dir, old)
    os.rename(new, state_dir)
    shutil.rmtree(old, ignore_errors=True)


def export(run_dir, state_dir, recipe: str = "") -> dict:
    """The newest checkpoint of the campaign run `run_dir` as the new state, with the totals remembered by
    [`begin`] plus the checkpoint's progress. Returns the totals.

    Example:
        ```py
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> pipe.save_pretrained("training/state")  # the state the run starts from, and its totals
        >>> with atomic_write("training/state/totals.json", "w") as f:
        ...     json.dump({"samples_seen": 143304, "optimizer_steps": 3913, "cpu_core_hours": 1.42, "gpu_hours": 0.1,
        ...                "runs": []}, f)
        >>> _ = begin("training/state", "runs/campaign")
        >>> _ = Path("runs/campaign/recipe.txt").write_text("lr 2e-4, batch 8, one CPU thread")  # how it trains

        >>> # What the run writes into a checkpoint: the U-Net, its EMA and the run's progress.
        >>> checkpoint = Path("runs/campaign/checkpoint-800")
        >>> pipe.unet.save_pretrained(checkpoint / "unet")
        >>> pipe.unet.save_pretrained(checkpoint / "unet_ema")
        >>> with atomic_write(checkpoint / PROGRESS_FILE, "w") as f:
        ...     json.dump({"global_step": 800, "samples_seen": 6400, "cpu_core_seconds": 4500.0,
        ...                "gpu_seconds": 0.0}, f)

        >>> totals = export("runs/campaign", "training/state")
        >>> totals["samples_seen"], totals["optimizer_steps"], totals["cpu_core_hours"]
        (149704, 4713, 2.67)
        >>> [(run["run"], run["recipe"]) for run in totals["runs"]]
        [('campaign', 'lr 2e-4, batch 8, one CPU thread')]
        >>> export("runs/campaign", "training/state")["samples_seen"]  # again: nothing is counted twice
        149704
        >>> sorted(os.listdir("training/state"))
        ['model_index.json', 'pipeline.py', 'scheduler', 'totals.json', 'unet', 'unet_ema']
        ```
    """
    run_dir = Path(run_dir)
    before = read_json(run_dir / START_FILE)
    checkpoint = newest_checkpoint(run_dir)
    progress = read_json(checkpoint / PROGRESS_FILE)
    if not recipe and (run_dir / "recipe.txt").exists():
        recipe = (run_dir / "recipe.txt").read_text().strip()
    totals = updated_totals(before, progress, run_dir.name, recipe)
    # The state being replaced may be the run's own start: read its schedule before it goes.
    scheduler_from = run_dir if (run_dir / "model_index.json").exists() else state_dir
    write_state(checkpoint, scheduler_from, state_dir, totals)
    return totals


def init(run_dir, state_dir, totals_before: dict, recipe: str) -> dict:
    """Start a lineage's state from a run's newest checkpoint (a run that was not started from a state),
    counting `totals_before` (what made its starting weights) and the run's progress. Returns the totals.

    Example:
        ```py
        >>> # A finished run that fine-tuned the shipped weights: its pipeline, and a checkpoint with its progress.
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> pipe.save_pretrained("data/study/base")
        >>> checkpoint = Path("data/study/base/checkpoint-284")
        >>> pipe.unet.save_pretrained(checkpoint / "unet")
        >>> pipe.unet.save_pretrained(checkpoint / "unet_ema")
        >>> with atomic_write(checkpoint / PROGRESS_FILE, "w") as f:
        ...     json.dump({"global_step": 284, "samples_seen": 2272, "cpu_core_seconds": 1202.4,
        ...                "gpu_seconds": 0.0}, f)

        >>> shipped = {"samples_seen": 143304, "optimizer_steps": 3913, "cpu_core_hours": 1.42, "gpu_hours": 0.1}
        >>> totals = init("data/study/base", "training/state", shipped, "the study's base recipe")
        >>> totals["samples_seen"], totals["optimizer_steps"], totals["cpu_core_hours"]
        (145576, 4197, 1.754)
        >>> [(run["run"], run["recipe"]) for run in totals["runs"]]
        [('base', "the study's base recipe")]
        ```
    """
    if Path(state_dir).exists():
        raise ValueError(f"{state_dir} exists; a lineage starts once (use export to update it).")
    start = Path(run_dir) / START_FILE
    with atomic_write(start, "w") as f:
        json.dump({"runs": [], **totals_before}, f, indent=1)
    totals = export(run_dir, state_dir, recipe)
    shutil.copy(start, Path(run_dir) / f"{START_FILE}.init")
    return totals


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Keep the training campaign's state (training/state).")
    commands = parser.add_subparsers(dest="command", required=True)
    begin_parser = commands.add_parser("begin", help="Before a run: remember the state's totals in the run folder.")
    begin_parser.add_argument("state_dir", help="The state folder (training/state).")
    begin_parser.add_argument("run_dir", help="The run's --output_dir.")
    export_parser = commands.add_parser(
        "export", help="Write the run's newest checkpoint and the totals as the state."
    )
    export_parser.add_argument("run_dir", help="The run's --output_dir.")
    export_parser.add_argument("state_dir", help="The state folder (training/state).")
    export_parser.add_argument(
        "--recipe", default="", help="How the run trained, for the totals (default: recipe.txt in the run)."
    )
    init_parser = commands.add_parser("init", help="Start a lineage's state from a run that did not start from one.")
    init_parser.add_argument("run_dir", help="The run's --output_dir.")
    init_parser.add_argument("state_dir", help="The state folder to create.")
    init_parser.add_argument(
        "--totals_before",
        required=True,
        help="A JSON file with samples_seen, optimizer_steps, cpu_core_hours, gpu_hours of the "
        "run's starting weights, and any other notes to keep.",
    )
    init_parser.add_argument("--recipe", required=True, help="How the run trained.")
    return parser.parse_args(argv)


def main(args):
    if args.command == "begin":
        totals = begin(args.state_dir, args.run_dir)
    elif args.command == "export":
        totals = export(args.run_dir, args.state_dir, args.recipe)
    else:
        totals = init(args.run_dir, args.state_dir, read_json(args.totals_before), args.recipe)
    print(json.dumps({k: v for k, v in totals.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    try:
        main(parse_args())
    except ValueError as error:
        raise SystemExit(f"campaign_state.py: error: {error}") from None
