"""Training throughput: samples per second of the fused-loss step for the U-Net presets.

    python examples/benchmark_training.py --presets small paper --batch_size 8 --steps 5

Each sample has a target and N ~ U(1..max_views) input views (the paper's rule), so a batch of B samples is
about B * (max_views + 1) / 2 (sample, view) pairs in one U-Net forward. Prints a table; `--output` writes
JSON. Measures the model step only (forward, backward, AdamW): the data loader has its own benchmark.
"""

import argparse
import json
import platform
import time

import numpy as np
import torch

from viewfusion_diffusers import UNET_PRESETS, ViewFusionUNet2DModel, default_scheduler
from viewfusion_diffusers.training_utils import fused_loss, sample_generators


def synthetic_batch(batch_size, max_views, resolution, seed):
    rng = np.random.default_rng(seed)
    num_views = torch.from_numpy(rng.integers(1, max_views + 1, size=batch_size))
    return {
        "input_views": torch.rand(int(num_views.sum()), 3, resolution, resolution) * 2 - 1,
        "num_views": num_views,
        "target": torch.rand(batch_size, 3, resolution, resolution) * 2 - 1,
        "target_azimuth": torch.from_numpy(rng.integers(0, 24, size=batch_size) * 15.0).float(),
        "indices": torch.arange(batch_size),
    }


def benchmark(preset, args, device, dtype):
    unet = ViewFusionUNet2DModel.from_preset(preset, sample_size=args.resolution).to(device).train()
    if args.compile:
        unet = torch.compile(unet)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    scheduler = default_scheduler()
    times, pairs = [], 0
    for step in range(args.warmup + args.steps):
        batch = {k: v.to(device) for k, v in synthetic_batch(args.batch_size, args.max_views, args.resolution, step).items()}
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = fused_loss(unet, scheduler, batch, sample_generators(0, step, batch["indices"].tolist()), args.resolution)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
            pairs += int(batch["num_views"].sum())
    seconds = float(np.median(times))
    return {
        "preset": preset,
        "parameters_m": round(sum(p.numel() for p in unet.parameters()) / 1e6, 2),
        "batch_size": args.batch_size,
        "seconds_per_step": round(seconds, 3),
        "samples_per_second": round(args.batch_size / seconds, 2),
        "view_pairs_per_second": round(pairs / sum(times), 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=sorted(UNET_PRESETS))
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_views", type=int, default=6)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="Timed steps (the median is reported).")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="Autocast precision.")
    parser.add_argument("--compile", action="store_true", help="torch.compile the U-Net.")
    parser.add_argument("--output", default=None, help="Write the rows as JSON here.")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    rows = [benchmark(preset, args, device, dtype) for preset in args.presets]
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    print(f"Training step, {args.resolution}x{args.resolution}, N ~ U(1..{args.max_views}), {args.dtype}, {hardware}")
    print("| preset | params (M) | batch | s / step | samples / s | view pairs / s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        columns = ("preset", "parameters_m", "batch_size", "seconds_per_step", "samples_per_second", "view_pairs_per_second")
        print("| " + " | ".join(str(r[c]) for c in columns) + " |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"hardware": hardware, "torch": torch.__version__, "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
