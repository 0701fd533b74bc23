"""Training throughput: samples per second of the training step, data path included, for the U-Net presets.

    python examples/benchmark_training.py --data_dir data/pybullet-64 --presets small paper --batch_size 64 \
        --dtype bf16

Each step is the training script's: a batch drawn with the paper's rules (a target and N ~ U(1..max_views)
input views per sample) from the views held in memory (`InMemoryViewSampler`; `--stream_data` reads them
through the `DataLoader` instead), the step's noise, pairs padded to a bucket on a GPU (`pair_bucket`), the fused loss,
backward, gradient clipping and AdamW. Without `--data_dir` the views are random images in memory: the same
path on data that needs no rendering. Reports samples and view pairs per second, and the arithmetic rate
(FLOPs of a step, counted by `torch.utils.flop_counter`, over its time) as a share of `--peak_tflops` (by
default the device's dense bf16 peak when known). Prints a table; `--output` writes JSON.
"""

import argparse
import json
import platform
import time

import torch

from viewfusion_diffusers import UNET_PRESETS, ViewFusionUNet2DModel, default_scheduler
from viewfusion_diffusers.constants import NUM_VIEWS
from viewfusion_diffusers.data import NMRDataset, ViewFusionTrainDataset, collate_views
from viewfusion_diffusers.data.samplers import (
    EpochPermutationSampler,
    InMemoryViewSampler,
    load_views_in_memory,
    pair_bucket,
    training_micro_batches,
)
from viewfusion_diffusers.training_utils import count_flops, device_peak_tflops, fused_loss


def batches(args, device, num_train_timesteps):
    """An endless stream of training batches, from the training script's own data path
    (`training_micro_batches`, seed 0, pose dropout 0.5, no gradient accumulation)."""
    resolution = args.resolution
    view_sampler = loader = None
    if args.stream_data:
        dataset = ViewFusionTrainDataset(NMRDataset(args.data_dir, split="train"), max_views=args.max_views)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=args.batch_size,
            sampler=EpochPermutationSampler(len(dataset), 0),
            collate_fn=collate_views,
            num_workers=args.num_workers,
            drop_last=True,
            pin_memory=device.type == "cuda",
        )
    else:
        if args.data_dir:
            views = load_views_in_memory(
                NMRDataset(args.data_dir, split="train"), resolution, device=device, show_progress=False
            )
        else:
            generator = torch.Generator().manual_seed(0)
            views = torch.randint(
                0,
                256,
                (max(args.batch_size, 64), NUM_VIEWS, 3, resolution, resolution),
                generator=generator,
                dtype=torch.uint8,
            ).to(device)
        view_sampler = InMemoryViewSampler(views, args.batch_size, max_views=args.max_views)
    return training_micro_batches(
        0,
        args.batch_size,
        (3, resolution, resolution),
        num_train_timesteps,
        view_sampler=view_sampler,
        dataloader=loader,
        device=device,
    )


def benchmark(preset, args, device, dtype, peak_tflops):
    torch.manual_seed(0)
    unet = ViewFusionUNet2DModel.from_preset(preset, sample_size=args.resolution).to(device).train()
    if args.channels_last:
        unet.to(memory_format=torch.channels_last)
    forward_unet = unet
    if args.compile:  # one static graph per pair bucket, as the training script
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * args.max_views + 4)
        forward_unet = torch.compile(unet, dynamic=False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    scheduler = default_scheduler()
    stream = batches(args, device, scheduler.config.num_train_timesteps)

    def train_step(batch):
        pad_to = None
        if device.type == "cuda" or args.compile:  # as the training script: where a new shape costs
            pad_to = pair_bucket(int(batch.num_views.sum()), args.batch_size, args.max_views)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = fused_loss(forward_unet, scheduler, batch, args.resolution, pad_pairs_to=pad_to)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        train_step(next(stream))
    probe = next(stream)
    step_flops = count_flops(lambda: train_step(probe))
    probe_pairs = int(probe.num_views.sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    # Timed as training runs: steps queued back to back, the device waited for once at the end.
    pairs, start = 0, time.perf_counter()
    for _ in range(args.steps):
        batch = next(stream)
        pairs += int(batch.num_views.sum())
        loss = train_step(batch)
    loss.item()
    seconds = (time.perf_counter() - start) / args.steps
    tflops = step_flops / probe_pairs * pairs / args.steps / seconds / 1e12
    return {
        "preset": preset,
        "parameters_m": round(sum(p.numel() for p in unet.parameters()) / 1e6, 2),
        "batch_size": args.batch_size,
        "seconds_per_step": round(seconds, 4),
        "samples_per_second": round(args.batch_size / seconds, 2),
        "view_pairs_per_second": round(pairs / args.steps / seconds, 1),
        "gflops_per_pair": round(step_flops / probe_pairs / 1e9, 3),
        "tflops": tflops,
        "share_of_peak": None if peak_tflops is None else tflops / peak_tflops,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=sorted(UNET_PRESETS))
    parser.add_argument("--data_dir", default=None, help="A rendered or NMR dataset; default: random views in memory.")
    parser.add_argument(
        "--stream_data", action="store_true", help="Read --data_dir through the DataLoader, not from memory."
    )
    parser.add_argument("--num_workers", type=int, default=2, help="DataLoader workers with --stream_data.")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_views", type=int, default=6)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="Timed steps.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed steps first (compilation, cuDNN planning).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="Autocast precision.")
    parser.add_argument("--channels_last", action="store_true", help="U-Net in NHWC.")
    parser.add_argument("--compile", action="store_true", help="torch.compile the U-Net.")
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=None,
        help="The device's arithmetic peak for the share column (default: the data-sheet dense figure "
        "for known GPUs, e.g. 989 for H100/H200 bf16; none on CPU).",
    )
    parser.add_argument("--output", default=None, help="Write the rows as JSON here.")
    args = parser.parse_args()
    if args.stream_data and not args.data_dir:
        parser.error("--stream_data reads --data_dir; give one.")
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    peak = args.peak_tflops if args.peak_tflops is not None else device_peak_tflops(device, dtype)
    rows = [benchmark(preset, args, device, dtype, peak) for preset in args.presets]
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    data = (
        "random views in memory"
        if not args.data_dir
        else f"{args.data_dir} ({'streamed' if args.stream_data else 'in memory'})"
    )
    print(
        f"Training step, {args.resolution}x{args.resolution}, N ~ U(1..{args.max_views}), {args.dtype}, {data}, "
        f"{hardware}, "
        f"peak {peak if peak is not None else 'unknown'} TFLOP/s"
    )
    print(
        "| preset | params (M) | batch | s / step | samples / s | view pairs / s | GFLOP / pair | TFLOP/s | share of "
        "peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = "n/a" if r["share_of_peak"] is None else f"{100 * r['share_of_peak']:.1f}%"
        columns = (
            "preset",
            "parameters_m",
            "batch_size",
            "seconds_per_step",
            "samples_per_second",
            "view_pairs_per_second",
            "gflops_per_pair",
            "tflops",
        )
        print("| " + " | ".join(str(r[c]) for c in columns[:-1]) + f" | {r['tflops']:.3g} | {share} |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(
                {
                    "hardware": hardware,
                    "torch": torch.__version__,
                    "peak_tflops": peak,
                    "args": vars(args),
                    "rows": rows,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
