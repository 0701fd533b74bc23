#!/usr/bin/env python
"""Train a ViewFusion pipeline with accelerate, on one CPU, one GPU, or many GPUs and nodes.

    accelerate launch training/train_viewfusion.py --data_dir data/pybullet-64 --output_dir outputs/viewfusion

Each step draws, for every sample, a target view, its azimuth and 1..max_views input views; all (sample,
view) pairs go through the U-Net in one forward; the loss is the MSE between the true noise (or v) and the
FUSED prediction. Randomness (data order, views, noise, timesteps, pose dropout) is a pure function of the
seed, the step and the process, so a run resumed from a checkpoint continues exactly as the uninterrupted run
would have.

The views of the split are held in memory as one uint8 tensor (on the GPU when there is one) and batches are
drawn from it with a few tensor operations; `--stream_data` reads them through a `DataLoader` instead, for
datasets that do not fit. `--max_train_minutes` trains until the time is up and then writes a checkpoint and
the final pipeline, so a run on a time budget ends with a usable model.
"""

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from huggingface_hub import create_repo, upload_folder
from PIL import Image
from tqdm.auto import tqdm

from viewfusion_diffusers import UNET_PRESETS, ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler
from viewfusion_diffusers.cli_help import DefaultsHelpFormatter
from viewfusion_diffusers.constants import view_azimuth
from viewfusion_diffusers.data import NMRDataset, ViewFusionTrainDataset, collate_views, make_eval_samples
from viewfusion_diffusers.data.samplers import (
    EpochPermutationSampler,
    InMemoryViewSampler,
    category_repeats,
    load_views_in_memory,
    pair_bucket,
    training_micro_batches,
)
from viewfusion_diffusers.distributed import cpu_distributed
from viewfusion_diffusers.hub_utils import make_model_card, save_pipeline_atomically
from viewfusion_diffusers.image_processor import ViewProcessor
from viewfusion_diffusers.images import comparison_row
from viewfusion_diffusers.training_utils import bf16_is_fast, fused_loss, load_ema_state


logger = get_logger(__name__, log_level="INFO")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a ViewFusion pipeline.", formatter_class=DefaultsHelpFormatter)
    parser.add_argument(
        "--data_dir", type=str, required=True, help="A dataset in the NMR layout (real NMR or rendered)."
    )
    parser.add_argument("--categories", type=str, nargs="*", default=None, help="Only these category folders.")
    parser.add_argument(
        "--category_repeats",
        type=str,
        nargs="*",
        default=[],
        metavar="CATEGORY=K",
        help="Visit each training object of CATEGORY K times an epoch, to weight the sources of a mixed "
        "dataset (e.g. random_urdfs=4 named=4 makes the pybullet objects about half of the pybullet-64 batches).",
    )
    parser.add_argument(
        "--resolution", type=int, default=64, help="Image size the model works at; views are resized to it."
    )
    parser.add_argument(
        "--model_config",
        type=str,
        default="small",
        help=f"A U-Net preset ({', '.join(UNET_PRESETS)}) or the path of a ViewFusionUNet2DModel config.json.",
    )
    parser.add_argument(
        "--pretrained_model_name_or_path",
        type=str,
        default=None,
        help="Start from this trained pipeline (folder or Hub repo id) instead of random weights; overrides "
        "--model_config.",
    )
    parser.add_argument(
        "--prediction_type",
        type=str,
        default=None,
        choices=["epsilon", "v_prediction", "sample"],
        help="What the U-Net predicts: the paper's epsilon (the default for a new model), v (trains "
        "faster on small compute), or the clean target view (sample). A fine-tuned pipeline keeps its own.",
    )
    parser.add_argument(
        "--snr_gamma",
        type=float,
        default=None,
        help="Weight each sample's loss by min-SNR-gamma (Hang et al. 2023; they recommend 5), for any "
        "prediction type. Default: the plain mean, as the paper.",
    )
    parser.add_argument(
        "--relative_pose",
        action="store_true",
        help="Condition on the input views' azimuths when known (posed and unposed in one model); adds "
        "the zero-initialised pose layers to a pretrained pose-free pipeline.",
    )
    parser.add_argument(
        "--pose_dropout",
        type=float,
        default=0.5,
        help="With --relative_pose (or a posed pretrained model): probability that a sample's input "
        "views are given without their azimuths. 0.5 kept the unposed mode better than 0.2 in a paired "
        "test (examples/results/2026-12-01-pose-dropout).",
    )
    parser.add_argument(
        "--train_only_pose_layers",
        action="store_true",
        help="Fine-tune only the relative-pose layers of a pretrained pipeline and freeze the rest: the "
        "unposed mode stays exactly as it was. Unposed samples do not reach these layers, so it needs "
        "--pose_dropout 0.",
    )
    parser.add_argument("--max_views", type=int, default=6, help="Input views per sample are drawn from 1..max_views.")
    parser.add_argument("--train_batch_size", type=int, default=8, help="Samples (targets) per device per step.")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per optimizer step.")
    parser.add_argument("--learning_rate", type=float, default=1e-4, help="Peak learning rate (the paper: 1e-4).")
    parser.add_argument(
        "--lr_scheduler",
        type=str,
        default="constant_with_warmup",
        help='One of diffusers\' schedules: "constant_with_warmup", "cosine", "linear", ...',
    )
    parser.add_argument("--lr_warmup_steps", type=int, default=2500, help="Warm-up steps (the paper: 2,500).")
    parser.add_argument("--adam_weight_decay", type=float, default=0.0, help="AdamW weight decay.")
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping norm.")
    parser.add_argument("--max_train_steps", type=int, default=10000, help="Optimizer steps to train for.")
    parser.add_argument(
        "--mixed_precision",
        type=str,
        default=None,
        choices=["no", "fp16", "bf16"],
        help="Overrides the accelerate config's mixed precision.",
    )
    parser.add_argument("--use_ema", action="store_true", help="Keep an exponential moving average of the weights.")
    parser.add_argument("--ema_max_decay", type=float, default=0.9999, help="The EMA's highest decay.")
    parser.add_argument(
        "--ema_from",
        type=str,
        default=None,
        help="Start the EMA from this saved one (a unet_ema folder: its weights and step count; the highest "
        "decay is --ema_max_decay's) instead of from the starting weights: to continue a lineage whose optimizer "
        "state was not kept (training/continue_default.sh). Needs --use_ema; a resumed checkpoint's EMA replaces it.",
    )
    parser.add_argument(
        "--checkpointing_steps", type=int, default=500, help="Save a resumable checkpoint every N steps."
    )
    parser.add_argument(
        "--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints."
    )
    parser.add_argument(
        "--resume_from_checkpoint",
        type=str,
        default=None,
        help='A checkpoint folder, or "latest" for the newest one in --output_dir.',
    )
    parser.add_argument(
        "--validation_steps", type=int, default=500, help="Write a sample grid every N steps (0: never)."
    )
    parser.add_argument(
        "--validation_inference_steps",
        type=int,
        default=20,
        help="Steps of the pipeline's DDPM sampler for validation samples (few: a preview, not an evaluation).",
    )
    parser.add_argument("--num_validation_objects", type=int, default=4, help="Objects in the validation grid.")
    parser.add_argument(
        "--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes (--stream_data)."
    )
    parser.add_argument(
        "--stream_data",
        action="store_true",
        help="Read views through a DataLoader instead of holding the split in memory (for datasets "
        "that do not fit: the in-memory tensor is objects x 24 x 3 x resolution^2 bytes).",
    )
    parser.add_argument(
        "--dataset_on_device",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Hold the in-memory views on the accelerator (default: yes on a GPU).",
    )
    parser.add_argument(
        "--channels_last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="U-Net weights and activations in NHWC (default: yes on a GPU, where convolutions are faster so).",
    )
    parser.add_argument(
        "--allow_tf32",
        action="store_true",
        help="Allow TF32 matrix multiplications on Ampere and newer GPUs: faster, slightly less exact.",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the U-Net (the first steps compile it).")
    parser.add_argument(
        "--logging_steps",
        type=int,
        default=10,
        help="Log the mean loss every N steps (reading it back waits for the device: not every step).",
    )
    parser.add_argument(
        "--max_train_minutes",
        type=float,
        default=None,
        help="Stop after this many minutes from the start (loading and compiling included, the final "
        "save not), then write a checkpoint and the final pipeline.",
    )
    parser.add_argument(
        "--max_train_cpu_minutes",
        type=float,
        default=None,
        help="Stop once the training loop has used this many minutes of this process's CPU time (all "
        "its threads; loading not counted), then save as --max_train_minutes does. Runs compared at "
        "equal CPU time on a shared machine are not penalised for what other programs take.",
    )
    parser.add_argument(
        "--output_dir", type=str, default="viewfusion-model", help="Where the pipeline and checkpoints go."
    )
    parser.add_argument("--logging_dir", type=str, default="logs", help="Tracker logs, relative to --output_dir.")
    parser.add_argument(
        "--report_to", type=str, default="tensorboard", help='"tensorboard", "wandb", "all" or "none".'
    )
    parser.add_argument("--push_to_hub", action="store_true", help="Upload the final pipeline folder to the Hub.")
    parser.add_argument("--hub_model_id", type=str, default=None, help="The Hub repo to push to.")
    parser.add_argument("--hub_token", type=str, default=None, help="Hub token (default: the logged-in one).")
    parser.add_argument("--seed", type=int, default=0, help="Seed for the model init, the data and the noise.")
    args = parser.parse_args(argv)
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id.")
    if args.logging_steps < 1:
        parser.error(f"--logging_steps must be at least 1, got {args.logging_steps}.")
    if args.max_train_minutes is not None and args.max_train_minutes <= 0:
        parser.error(f"--max_train_minutes must be positive, got {args.max_train_minutes}.")
    if args.ema_from and not args.use_ema:
        parser.error("--ema_from continues a saved EMA; add --use_ema.")
    if args.max_train_cpu_minutes is not None and args.max_train_cpu_minutes <= 0:
        parser.error(f"--max_train_cpu_minutes must be positive, got {args.max_train_cpu_minutes}.")
    if args.snr_gamma is not None and args.snr_gamma <= 0:
        parser.error(f"--snr_gamma must be positive, got {args.snr_gamma}.")
    if not 0 <= args.pose_dropout <= 1:
        parser.error(f"--pose_dropout is a probability in [0, 1], got {args.pose_dropout}.")
    if args.train_only_pose_layers and not args.pretrained_model_name_or_path:
        parser.error("--train_only_pose_layers fine-tunes a trained network; pass --pretrained_model_name_or_path.")
    if args.train_only_pose_layers and args.pose_dropout != 0:
        parser.error(
            "--train_only_pose_layers trains only the layers that read the input views' azimuths, which "
            f"unposed samples never reach; pass --pose_dropout 0 (got {args.pose_dropout})."
        )
    repeats = {}
    for item in args.category_repeats:
        category, _, count = item.partition("=")
        if not category or not count.isdigit() or int(count) < 1:
            parser.error(f"--category_repeats takes CATEGORY=K with K a positive integer, got {item!r}.")
        repeats[category] = int(count)
    args.category_repeats = repeats
    return args


def build_unet_and_noise_scheduler(args) -> tuple[ViewFusionUNet2DModel, DDPMScheduler]:
    """A new U-Net (preset or config) with the paper's schedule, or a trained pipeline's U-Net and schedule."""
    # Both paths make random weights: a new U-Net, or the pose layers `enable_relative_pose` adds.
    torch.manual_seed(args.seed)
    if args.pretrained_model_name_or_path:
        pipeline = ViewFusionPipeline.from_pretrained(args.pretrained_model_name_or_path)
        unet, noise_scheduler = pipeline.unet.to(torch.float32), DDPMScheduler.from_config(pipeline.scheduler.config)
        trained_for = noise_scheduler.config.prediction_type
        if args.prediction_type not in (None, trained_for):
            raise ValueError(
                f"{args.pretrained_model_name_or_path} predicts {trained_for}; drop --prediction_type "
                f"{args.prediction_type} to fine-tune it (switching what a trained U-Net predicts is not supported)."
            )
        sample_size = unet.config.sample_size
        height, width = (sample_size, sample_size) if isinstance(sample_size, int) else tuple(sample_size)
        if height != width:
            raise ValueError(
                f"{args.pretrained_model_name_or_path} works at {height}x{width}; training needs a square "
                "model (the views are square): fine-tune a square one."
            )
        if height != args.resolution:
            raise ValueError(
                f"{args.pretrained_model_name_or_path} works at {height}x{width}; pass --resolution {height}."
            )
        if args.relative_pose:
            unet.enable_relative_pose()
        if args.train_only_pose_layers:
            if not unet.config.relative_pose:
                raise ValueError(
                    f"{args.pretrained_model_name_or_path} has no pose layers to train; add --relative_pose."
                )
            # The unknown-pose vector stays frozen too: it is what the unposed mode adds, and it must not move.
            unet.requires_grad_(False)
            unet.class_embedding.relative_azimuth.requires_grad_(True)
        return unet, noise_scheduler
    if args.model_config in UNET_PRESETS:
        unet = ViewFusionUNet2DModel.from_preset(
            args.model_config, sample_size=args.resolution, relative_pose=args.relative_pose
        )
    elif os.path.isfile(args.model_config):
        config = ViewFusionUNet2DModel.load_config(args.model_config)
        unet = ViewFusionUNet2DModel.from_config(
            {
                **config,
                "sample_size": args.resolution,
                "relative_pose": args.relative_pose or config.get("relative_pose", False),
            }
        )
    else:
        raise ValueError(
            f"--model_config {args.model_config!r} is neither a preset ({list(UNET_PRESETS)}) nor a file."
        )
    return unet, default_scheduler(args.prediction_type or "epsilon")


@torch.no_grad()
def log_validation(
    unet,
    noise_scheduler,
    eval_objects,
    eval_samples,
    resolution: int,
    num_inference_steps: int,
    num_slots: int,
    output_dir: str,
    trackers,
    global_step: int,
) -> np.ndarray:
    """Sample each validation object and write a grid: inputs | sample | ground truth | weight maps.

    Samples with the pipeline's own DDPM sampler at `num_inference_steps` steps: a cheap preview of training.
    Writes `output_dir/validation/step-N.png` and returns the grid.
    """
    pipeline = ViewFusionPipeline(unet=unet, scheduler=DDPMScheduler.from_config(noise_scheduler.config))
    pipeline.set_progress_bar_config(disable=True)
    rows = []
    for i, sample in enumerate(eval_samples):
        views = eval_objects.load_views(sample.object_index)
        if views.shape[-1] != resolution:
            views = ViewProcessor.resize(views.float() / 255, resolution, resolution)
            views = (views * 255).round().to(torch.uint8)
        inputs = [views[k] for k in sample.input_indices]
        out = pipeline(
            inputs,
            view_azimuth(sample.target_index),
            num_inference_steps=num_inference_steps,
            generator=torch.Generator().manual_seed(i),
            output_type="np",
        )
        as_hwc = lambda view: view.permute(1, 2, 0).numpy()
        rows.append(
            comparison_row(
                [as_hwc(v) for v in inputs],
                out.images[0],
                as_hwc(views[sample.target_index]),
                out.view_weights[0],
                num_slots=num_slots,
            )
        )
    grid = np.concatenate(rows, axis=0)
    os.makedirs(os.path.join(output_dir, "validation"), exist_ok=True)
    Image.fromarray(grid).save(os.path.join(output_dir, "validation", f"step-{global_step:07d}.png"))
    for tracker in trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("validation", grid, global_step, dataformats="HWC")
    return grid


def save_final_pipeline(
    unet,
    noise_scheduler,
    ema_unet,
    training_config: dict,
    folder,
    global_step: int,
    num_train_objects: int,
    hub_model_id: str | None = None,
) -> None:
    """The pipeline in the Hub format, with EMA weights when EMA is on, and a model card of the run."""
    if ema_unet is not None:
        unet = ViewFusionUNet2DModel.from_config(unet.config)
        ema_unet.copy_to(unet.parameters())
    pipeline = ViewFusionPipeline(unet=unet.to("cpu"), scheduler=noise_scheduler)
    body = (
        "## Training\n\n"
        f"Trained with `training/train_viewfusion.py` for {global_step} steps on {num_train_objects} objects "
        f"from `{training_config.get('data_dir')}`.\n\n```json\n{json.dumps(training_config, indent=2)}\n```\n"
    )
    card = make_model_card("ViewFusion pipeline", body, repo_id=hub_model_id or "path/to/this/folder")
    save_pipeline_atomically(pipeline, folder, card)


PROGRESS_FILE = "training_progress.json"


def run_progress(
    global_step: int, samples_per_step: int, num_processes: int, on_gpu: bool, earlier: dict, started: float
) -> dict:
    """What the run has done and cost up to `global_step`: samples, CPU core-seconds (this process's CPU time
    times the processes) and GPU-seconds (wall time times the processes, on GPUs), added to `earlier` (the
    progress of the checkpoint the run resumed from, so a run stopped and resumed counts each second once)."""
    wall = time.monotonic() - started
    return {
        "global_step": global_step,
        "samples_seen": global_step * samples_per_step,
        "cpu_core_seconds": earlier.get("cpu_core_seconds", 0.0)
        + (0.0 if on_gpu else time.process_time() * num_processes),
        "gpu_seconds": earlier.get("gpu_seconds", 0.0) + (wall * num_processes if on_gpu else 0.0),
        "wall_seconds": earlier.get("wall_seconds", 0.0) + wall,
    }


def list_checkpoints(output_dir) -> list[Path]:
    """The complete `checkpoint-N` folders of `output_dir`, oldest (lowest N) first."""
    checkpoints = [
        p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()
    ]
    return sorted(checkpoints, key=lambda p: int(p.name.split("-", 1)[1]))


def remove_partial_checkpoints(output_dir) -> None:
    """Remove the `.tmp-checkpoint-*` folders a killed run left half-written (`save_checkpoint` stages there)."""
    for partial in Path(output_dir).glob(".tmp-checkpoint-*"):
        shutil.rmtree(partial, ignore_errors=True)


def save_checkpoint(
    accelerator, output_dir: str, global_step: int, checkpoints_total_limit: int | None, progress: dict | None = None
) -> str:
    """A resumable `checkpoint-N`: accelerate's optimizer, schedule and RNG state, the U-Net in the diffusers
    format (`unet/`) and the EMA (`unet_ema/`), written by the save hook, and `progress` as
    `training_progress.json` (what the run has cost so far). Returns the folder."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and checkpoints_total_limit is not None:
        checkpoints = list_checkpoints(output_dir)
        for old in checkpoints[: max(0, len(checkpoints) - checkpoints_total_limit + 1)]:
            shutil.rmtree(old)
    # Written under a temporary name and renamed when complete: `--resume_from_checkpoint latest` never
    # picks up a checkpoint that a killed run left half-written.
    path = os.path.join(output_dir, f"checkpoint-{global_step}")
    staging = os.path.join(output_dir, f".tmp-checkpoint-{global_step}")
    accelerator.save_state(staging)
    # Every process writes its own random state into the staging folder: all of them must be done before it is
    # renamed, or a late one recreates the staging folder and the checkpoint lacks that state.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if progress is not None:
            with open(os.path.join(staging, PROGRESS_FILE), "w") as f:
                json.dump(progress, f, indent=1)
        shutil.rmtree(path, ignore_errors=True)
        os.rename(staging, path)
    accelerator.wait_for_everyone()
    return path


def main(args):
    started = time.monotonic()
    deadline = None if args.max_train_minutes is None else started + 60 * args.max_train_minutes
    accelerator = Accelerator(
        cpu=cpu_distributed(),
        mixed_precision=args.mixed_precision,
        # Every optimizer step is exactly --gradient_accumulation_steps micro-batches, also across the end of an epoch.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=args.gradient_accumulation_steps, sync_with_dataloader=False
        ),
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, args.logging_dir)
        ),
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    on_gpu = accelerator.device.type == "cuda"
    if accelerator.mixed_precision == "bf16" and not bf16_is_fast(accelerator.device):
        logger.warning(
            f"bf16 autocast has no native support on this {accelerator.device.type}: it is emulated and slower "
            "than fp32 here. Train without --mixed_precision bf16 (or with --mixed_precision no)."
        )
    if on_gpu:
        # A few fixed pair counts (see `pair_bucket`): worth benchmarking each convolution once.
        torch.backends.cudnn.benchmark = True
    if args.allow_tf32:
        torch.backends.cuda.matmul.allow_tf32 = True

    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
        remove_partial_checkpoints(args.output_dir)
        if args.push_to_hub:
            repo_id = create_repo(args.hub_model_id, exist_ok=True, token=args.hub_token).repo_id

    # 1. model, noise schedule, EMA
    unet, noise_scheduler = build_unet_and_noise_scheduler(args)
    if on_gpu if args.channels_last is None else args.channels_last:
        unet.to(memory_format=torch.channels_last)
    ema_unet = None
    if args.use_ema:
        ema_unet = EMAModel(
            unet.parameters(),
            decay=args.ema_max_decay,
            use_ema_warmup=True,
            foreach=True,
            model_cls=ViewFusionUNet2DModel,
            model_config=unet.config,
        )
        if args.ema_from:
            load_ema_state(ema_unet, args.ema_from, ViewFusionUNet2DModel, "cpu")
            # The saved state brings its own decay; this run's flag says how this run averages.
            ema_unet.decay = args.ema_max_decay
            # A lineage's EMA may be stored in half precision; averaging in it would lose the small updates.
            ema_unet.to(dtype=torch.float32)
            if [tuple(p.shape) for p in ema_unet.shadow_params] != [tuple(p.shape) for p in unet.parameters()]:
                raise ValueError(f"--ema_from {args.ema_from} holds the EMA of another network than the one trained.")
            logger.info(f"EMA continued from {args.ema_from} at its step {ema_unet.optimization_step}.")

    # As in diffusers' training scripts: each checkpoint holds the U-Net once, in the diffusers format, and the
    # EMA beside it; accelerate's own copy of the weights is dropped.
    def save_model_hook(models, weights, output_dir):
        for model in models:
            if accelerator.is_main_process:
                accelerator.unwrap_model(model).save_pretrained(os.path.join(output_dir, "unet"))
            weights.pop()
        if accelerator.is_main_process and ema_unet is not None:
            ema_unet.save_pretrained(os.path.join(output_dir, "unet_ema"))

    def load_model_hook(models, input_dir):
        if ema_unet is not None:
            load_ema_state(ema_unet, os.path.join(input_dir, "unet_ema"), ViewFusionUNet2DModel, accelerator.device)
        while models:
            model = accelerator.unwrap_model(models.pop())
            loaded = ViewFusionUNet2DModel.from_pretrained(input_dir, subfolder="unet")
            model.register_to_config(**loaded.config)
            model.load_state_dict(loaded.state_dict())  # copies into the model's own device and layout
            del loaded

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)

    # 2. data
    micro_batch = args.train_batch_size
    step_batch = micro_batch * args.gradient_accumulation_steps  # samples per process per optimizer step
    train_objects = NMRDataset(args.data_dir, split="train", categories=args.categories)
    object_repeats = category_repeats(train_objects.objects, args.category_repeats) if args.category_repeats else None
    train_dataloader = view_sampler = None
    if args.stream_data:
        train_dataset = ViewFusionTrainDataset(
            train_objects, max_views=args.max_views, seed=args.seed, object_repeats=object_repeats
        )
        train_dataloader = torch.utils.data.DataLoader(
            train_dataset,
            batch_size=micro_batch,
            sampler=EpochPermutationSampler(len(train_dataset), args.seed),
            collate_fn=collate_views,
            num_workers=args.dataloader_num_workers,
            drop_last=True,
            pin_memory=on_gpu,
        )
        # Sharded across processes, but left on the host: the step moves the images and keeps the counts there.
        train_dataloader = accelerator.prepare_data_loader(train_dataloader, device_placement=False)
        steps_per_epoch = len(train_dataloader) // args.gradient_accumulation_steps
        if steps_per_epoch == 0:
            raise ValueError(
                f"{len(train_dataset)} training objects make no full step of {step_batch} samples per "
                f"process x {accelerator.num_processes}; lower --train_batch_size or --gradient_accumulation_steps."
            )
    else:
        on_device = on_gpu if args.dataset_on_device is None else args.dataset_on_device
        if len(train_objects) < step_batch * accelerator.num_processes:
            raise ValueError(
                f"{len(train_objects)} training objects make no full step of {step_batch} samples per "
                f"process x {accelerator.num_processes}; lower --train_batch_size or --gradient_accumulation_steps."
            )
        views = load_views_in_memory(
            train_objects,
            args.resolution,
            device=accelerator.device if on_device else None,
            show_progress=accelerator.is_local_main_process,
        )
        view_sampler = InMemoryViewSampler(
            views,
            step_batch,
            max_views=args.max_views,
            seed=args.seed,
            num_processes=accelerator.num_processes,
            process_index=accelerator.process_index,
            object_repeats=object_repeats,
        )
        logger.info(f"Views in memory: {tuple(views.shape)} uint8, {views.numel() / 2**20:.0f} MB on {views.device}.")
    try:
        eval_objects = NMRDataset(args.data_dir, split="val", categories=args.categories)
    except ValueError:
        eval_objects = train_objects
    eval_samples = make_eval_samples(eval_objects, num_views=(min(3, args.max_views),), seed=args.seed)
    eval_samples = eval_samples[: args.num_validation_objects]

    # 3. optimizer and schedule (the paper: Adam, warm-up to 1e-4 over 2,500 steps)
    trainable = [parameter for parameter in unet.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=args.learning_rate, weight_decay=args.adam_weight_decay, fused=on_gpu or None
    )
    lr_scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        # The prepared schedule advances once per process on every optimizer step.
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    if ema_unet is not None:
        ema_unet.to(accelerator.device)
    # Compiled after `prepare`, so checkpoints and the EMA see the plain module (`unwrap_model` strips both).
    # One static graph per pair bucket (about 6 in a run, at most batch * max_views / (batch // 4)).
    forward_unet = unet
    if args.compile:
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * args.max_views + 4)
        forward_unet = torch.compile(unet, dynamic=False)
    # Padding to buckets pays where a new shape costs (cuDNN planning, recompiling), not in eager CPU runs.
    pad_pairs = on_gpu or args.compile
    if accelerator.is_main_process:
        accelerator.init_trackers(
            "viewfusion", config={k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
        )
    logger.info(
        f"{len(train_objects)} objects, {args.max_train_steps} steps, {step_batch * accelerator.num_processes} "
        "samples "
        f"per step ({micro_batch} per device x {accelerator.num_processes} processes x "
        f"{args.gradient_accumulation_steps} "
        f"accumulation), data {'streamed' if args.stream_data else 'in memory'}, "
        f"{sum(p.numel() for p in trainable):,} of {sum(p.numel() for p in unet.parameters()):,} parameters trained"
    )

    # 4. resume
    global_step, earlier_progress = 0, {}
    if args.resume_from_checkpoint:
        path = args.resume_from_checkpoint
        if path == "latest":
            checkpoints = list_checkpoints(args.output_dir)
            path = str(checkpoints[-1]) if checkpoints else None
        if path is None:
            logger.info("No checkpoint found in --output_dir; starting a new run.")
        elif not os.path.isdir(path):
            raise ValueError(
                f"--resume_from_checkpoint {path!r} is not a folder; give a checkpoint-N folder or 'latest'."
            )
        else:
            accelerator.load_state(path)
            global_step = int(Path(path).name.split("-")[1])
            if os.path.isfile(os.path.join(path, PROGRESS_FILE)):
                with open(os.path.join(path, PROGRESS_FILE)) as f:
                    earlier_progress = json.load(f)
            logger.info(f"Resumed from {path} at step {global_step}.")

    # 5. train
    image_shape = (3, args.resolution, args.resolution)
    num_train_timesteps = noise_scheduler.config.num_train_timesteps
    # A U-Net conditioned on the noise level draws it between the levels of timesteps t - 1 and t, as the authors do.
    min_timestep = 1 if accelerator.unwrap_model(unet).config.conditioning == "noise_level" else 0

    def micro_batches(first_step):
        """The micro-batches of each optimizer step from `first_step` on, each a pure function of (seed, step)."""
        return training_micro_batches(
            first_step,
            step_batch,
            image_shape,
            num_train_timesteps,
            view_sampler=view_sampler,
            dataloader=train_dataloader,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            pose_dropout=args.pose_dropout,
            seed=args.seed,
            process_index=accelerator.process_index,
            device=accelerator.device,
            skip_first_batches=accelerator.skip_first_batches,
            min_timestep=min_timestep,
        )

    cpu_started = time.process_time()
    cpu_deadline = None if args.max_train_cpu_minutes is None else cpu_started + 60 * args.max_train_cpu_minutes

    def out_of_time():
        if deadline is None and cpu_deadline is None:
            return False
        late = (deadline is not None and time.monotonic() > deadline) or (
            cpu_deadline is not None and time.process_time() > cpu_deadline
        )
        if accelerator.num_processes > 1:  # every process must stop at the same step
            late = bool(accelerator.reduce(torch.tensor(float(late), device=accelerator.device), "max"))
        return late

    progress_bar = tqdm(
        range(args.max_train_steps), initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    unet.train()
    batches = micro_batches(global_step)
    logged_loss, logged_steps, stopped_early = torch.zeros((), device=accelerator.device), 0, False
    last_checkpoint = None
    while global_step < args.max_train_steps:
        step_loss = 0.0
        # `accumulate` syncs gradients across processes and steps the optimizer and schedule only on the last
        # micro-batch of the step; `backward` divides the loss by the number of micro-batches.
        for _ in range(args.gradient_accumulation_steps):
            batch = next(batches)
            pad_to = pair_bucket(int(batch.num_views.sum()), micro_batch, args.max_views) if pad_pairs else None
            with accelerator.accumulate(unet):
                with accelerator.autocast():
                    loss = fused_loss(
                        forward_unet,
                        noise_scheduler,
                        batch,
                        args.resolution,
                        pad_pairs_to=pad_to,
                        snr_gamma=args.snr_gamma,
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(unet.parameters(), args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss = step_loss + loss.detach() / args.gradient_accumulation_steps

        global_step += 1
        if ema_unet is not None:
            ema_unet.step(unet.parameters())
        logged_loss += step_loss
        logged_steps += 1
        progress_bar.update(1)
        stop = False
        if global_step % args.logging_steps == 0 or global_step == args.max_train_steps:
            # The one place the step waits for the device: reading the loss back.
            logs = {
                "loss": accelerator.gather(logged_loss[None]).mean().item() / logged_steps,
                "lr": lr_scheduler.get_last_lr()[0],
            }
            if ema_unet is not None:
                logs["ema_decay"] = ema_unet.cur_decay_value
            progress_bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['lr']:.2e}")
            accelerator.log(logs, step=global_step)
            logged_loss, logged_steps = torch.zeros_like(logged_loss), 0
            stop = out_of_time()
        elif accelerator.num_processes == 1:
            stop = out_of_time()

        if global_step % args.checkpointing_steps == 0 or global_step == args.max_train_steps or stop:
            progress = run_progress(
                global_step,
                step_batch * accelerator.num_processes,
                accelerator.num_processes,
                on_gpu,
                earlier_progress,
                started,
            )
            last_checkpoint = save_checkpoint(
                accelerator, args.output_dir, global_step, args.checkpoints_total_limit, progress
            )
        if accelerator.is_main_process and args.validation_steps and global_step % args.validation_steps == 0:
            model = accelerator.unwrap_model(unet)
            if ema_unet is not None:
                ema_unet.store(model.parameters())
                ema_unet.copy_to(model.parameters())
            model.eval()
            log_validation(
                model,
                noise_scheduler,
                eval_objects,
                eval_samples,
                args.resolution,
                args.validation_inference_steps,
                args.max_views,
                args.output_dir,
                accelerator.trackers,
                global_step,
            )
            model.train()
            if ema_unet is not None:
                ema_unet.restore(model.parameters())
        if stop:
            stopped_early = True
            limit = (
                f"--max_train_minutes {args.max_train_minutes}"
                if deadline is not None and time.monotonic() > deadline
                else f"--max_train_cpu_minutes {args.max_train_cpu_minutes}"
            )
            logger.info(f"{limit} reached at step {global_step}; checkpoint in {last_checkpoint}.")
            break

    # 6. the final pipeline, in the Hub format
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        training_config = {k: v for k, v in vars(args).items() if k != "hub_token"}
        training_config["trained_steps"], training_config["stopped_by_time_limit"] = global_step, stopped_early
        training_config["train_cpu_minutes"] = round((time.process_time() - cpu_started) / 60, 2)
        save_final_pipeline(
            accelerator.unwrap_model(unet),
            noise_scheduler,
            ema_unet,
            training_config,
            args.output_dir,
            global_step,
            len(train_objects),
            args.hub_model_id,
        )
        logger.info(
            f"Pipeline written to {args.output_dir} after {global_step} steps, "
            f"{(time.monotonic() - started) / 60:.1f} minutes."
        )
        if args.push_to_hub:
            upload_folder(
                repo_id=repo_id,
                folder_path=args.output_dir,
                token=args.hub_token,
                commit_message=f"ViewFusion pipeline after {global_step} steps",
                ignore_patterns=["checkpoint-*", f"{args.logging_dir}/*", "validation/*", ".*"],
            )
    accelerator.end_training()


if __name__ == "__main__":
    try:
        main(parse_args())
    except ValueError as error:  # bad data or arguments: one line that says what to fix, not a traceback
        raise SystemExit(f"train_viewfusion.py: error: {error}") from None
