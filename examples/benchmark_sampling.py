"""Seconds per novel view: the official sampling loop's shape against this pipeline, for N input views.

    python examples/benchmark_sampling.py --models default paper --num_views 1 3 6 --output sampling.json

- `reference`: ancestral DDPM over all training steps with one U-Net call per input view per step (the shape
  of the authors' loop). Its cost per step is the same at every step, so it is timed over `--reference_steps`
  steps and multiplied up to the full schedule (the table says so).
- `batched`: this pipeline, all views of a step in one U-Net batch, with the fast samplers given by
  `--samplers name:steps ...`; `view_batch_size` chunking is timed too (`batched/vbs=2`).
- `--variants`: the first sampler again with one change each: `channels_last` (U-Net weights and activations in
  NHWC), `threads:K` (`torch.set_num_threads(K)`), `compile` (`torch.compile` of the U-Net's forward; the first
  call, compilation included, is reported in the note; `compile:reduce-overhead` also captures the denoising
  step in a CUDA graph, which pays on a GPU where a small step is bound by kernel launches) and `objects:K` (K
  copies of the object in one call, as the evaluation batches them; the time is per object).
- For each, the peak memory above the baseline (process RSS on CPU, allocated memory on GPU), the share of
  the time spent outside the U-Net (input preparation, fusion, scheduler step), objects per second, and the
  U-Net's arithmetic rate: its FLOPs per (view, target) pair per step (counted once with
  `torch.utils.flop_counter`) times the pairs and steps of a call, over the call's time, as a share of
  `--peak_tflops` (by default the device's dense figure for the dtype when known, e.g. 989 for H100/H200
  bf16; none on CPU). Combine `objects:K` with a large K and `compile:reduce-overhead` for throughput.

`--quality results.json` (from `viewfusion-eval --sampler_study` at one N on the `default` pipeline) puts each
sampler's LPIPS next to its time in the `default` rows of that N, with its paired difference to DDPM over all
steps (mean ± 95% CI over the study's samples; the presets have random weights: no quality to speak of).
Models: `default` (the pipeline shipped in `pipelines/`, or `--pipeline`, e.g. a folder `viewfusion convert` wrote),
the `paper` / `small` presets, and `original`: the authors' network as `viewfusion convert` builds it from their
published configuration (33.9M parameters, conditioned on the noise level, 2,000-step schedule). The presets and
`original` have random weights: speed does not depend on them.
"""

import argparse
import contextlib
import json
import threading
import time

import psutil
import torch
from diffusers import DDPMScheduler

from viewfusion_diffusers import (
    SCHEDULERS,
    ViewFusionPipeline,
    ViewFusionUNet2DModel,
    default_scheduler,
    scheduler_from_name,
)
from viewfusion_diffusers.constants import DEFAULT_PIPELINE
from viewfusion_diffusers.conversion import load_original_config, scheduler_from_original, unet_config_from_original
from viewfusion_diffusers.evaluation import paired_lpips_difference
from viewfusion_diffusers.fusion import predict_fused_noise
from viewfusion_diffusers.training_utils import count_flops, device_peak_tflops


class PeakMemory:
    """Peak memory above the level at entry, in MB: CUDA's allocator statistics, or the process RSS sampled every
    2 ms."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb = device, 0.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
        else:
            self.process, self.running = psutil.Process(), True
            self.baseline = self.peak = self.process.memory_info().rss
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self.baseline) / 2**20
        else:
            self.running = False
            self.thread.join()
            self.peak_mb = (self.peak - self.baseline) / 2**20


class UNetTimer:
    """Adds up the wall time spent inside the U-Net's forward (synchronising CUDA around it)."""

    def __init__(self, unet):
        self.seconds, self.unet = 0.0, unet

    def __enter__(self):
        def before(module, args):
            if self.unet.device.type == "cuda":
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def after(module, args, output):
            if self.unet.device.type == "cuda":
                torch.cuda.synchronize()
            self.seconds += time.perf_counter() - self.start

        self.handles = [self.unet.register_forward_pre_hook(before), self.unet.register_forward_hook(after)]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


@torch.no_grad()
def reference_loop(unet, scheduler_config, views, azimuth, num_steps, generator):
    """The official loop's shape: ancestral DDPM, one U-Net call per view per step. Runs `num_steps` of the
    full schedule and returns the latents (for timing, the first steps stand for all)."""
    scheduler = DDPMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(scheduler.config.num_train_timesteps)
    latents = torch.randn((1, 3, *views.shape[-2:]), generator=generator).to(views.device, views.dtype)
    azimuth = torch.tensor([azimuth], device=views.device)
    for t in scheduler.timesteps[:num_steps]:
        noise_level = scheduler.alphas_cumprod[t] if unet.config.conditioning == "noise_level" else None
        fused, _ = predict_fused_noise(
            unet, views, latents, t, azimuth, torch.tensor([len(views)]), max_pairs=1, noise_level=noise_level
        )
        latents = scheduler.step(fused, t, latents, generator=generator).prev_sample
    return latents


def measure(function, device, unet, repeats: int, warm_up: bool = True):
    """Median seconds of `function()` over `repeats` runs (after one warm-up run unless `warm_up=False`) with the
    U-Net's share of that run, and the peak memory of one more run. The memory has a run of its own because on
    CPU a thread samples the RSS, and its share of the interpreter would count as time outside the U-Net."""
    if warm_up:
        function()
    runs = []
    for _ in range(repeats):
        with UNetTimer(unet) as timer:
            start = time.perf_counter()
            function()
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        runs.append((seconds, timer.seconds / seconds))
    runs.sort()
    seconds, unet_share = runs[len(runs) // 2]
    with PeakMemory(device) as memory:
        function()
    return seconds, memory.peak_mb, unet_share


VARIANTS = ("channels_last", "threads", "compile", "objects")


@contextlib.contextmanager
def variant(pipeline, name: str):
    """Apply one speed-up to `pipeline` for the duration of the block; yields extra pipeline call arguments."""
    kind, _, value = name.partition(":")
    if kind == "channels_last":
        pipeline.unet.to(memory_format=torch.channels_last)
        yield {}
        pipeline.unet.to(memory_format=torch.contiguous_format)
    elif kind == "threads":
        before = torch.get_num_threads()
        torch.set_num_threads(int(value))
        yield {}
        torch.set_num_threads(before)
    elif kind == "compile":
        pipeline.unet.forward = torch.compile(pipeline.unet.forward, mode=value or None)
        yield {}
        del pipeline.unet.forward  # back to the class's forward
    elif kind == "objects":
        yield {"objects": int(value)}
    else:
        raise ValueError(f"Unknown variant {name!r}.")


COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def unet_flops_per_pair(unet) -> int:
    """FLOPs of one U-Net forward for one (view, noisy target) pair (the count is linear in the pairs)."""
    size = unet.config.sample_size
    pairs = torch.zeros(2, unet.config.in_channels, size, size, device=unet.device, dtype=unet.dtype)
    timesteps, azimuths = torch.tensor([500, 500], device=unet.device), torch.tensor([90.0, 90.0], device=unet.device)
    noise_levels = torch.tensor([0.5, 0.5], device=unet.device) if unet.config.conditioning == "noise_level" else None
    with torch.no_grad():
        return count_flops(lambda: unet(pairs, timesteps, azimuths, noise_level=noise_levels)) // 2


def load_model(name: str, pipeline_id: str, device, dtype) -> ViewFusionPipeline:
    if name == "default":
        pipeline = ViewFusionPipeline.from_pretrained(pipeline_id)
    elif name == "original":
        torch.manual_seed(0)
        config = load_original_config()
        pipeline = ViewFusionPipeline(
            ViewFusionUNet2DModel(**unet_config_from_original(config)), scheduler_from_original(config)
        )
    else:
        torch.manual_seed(0)
        pipeline = ViewFusionPipeline(ViewFusionUNet2DModel.from_preset(name), default_scheduler())
    pipeline.set_progress_bar_config(disable=True)
    pipeline.to(device)
    pipeline.unet.to(dtype)
    return pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["default", "paper"], help="default, paper, small, original.")
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="The pipeline behind `default`.")
    parser.add_argument("--num_views", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument(
        "--samplers",
        nargs="+",
        default=["ddpm:50", "ddim:50"],
        help="name:steps pairs; names as in `viewfusion_diffusers.SCHEDULERS`.",
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[],
        help="channels_last, threads:K, compile[:mode], objects:K (e.g. objects:64 compile:reduce-overhead).",
    )
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=None,
        help="The device's arithmetic peak for the share column (default: the data-sheet dense figure for "
        "known GPUs, e.g. 989 for H100/H200 bf16; none on CPU).",
    )
    parser.add_argument("--reference_steps", type=int, default=10, help="Timed steps of the 2,000-step reference.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per setting; the median is reported.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--quality", default=None, help="results.json of `viewfusion-eval --sampler_study`.")
    parser.add_argument("--output", default=None, help="Write the rows as JSON here.")
    args = parser.parse_args()
    samplers = []  # (name, steps)
    for sampler in args.samplers:
        name, _, steps = sampler.partition(":")
        if name not in SCHEDULERS or not steps.isdigit() or int(steps) < 1:
            parser.error(
                f"bad sampler {sampler!r}; give name:steps with a name from {', '.join(SCHEDULERS)} (e.g. ddpm:50)."
            )
        samplers.append((name, int(steps)))
    for change in args.variants:
        if change.partition(":")[0] not in VARIANTS:
            parser.error(f"unknown variant {change!r}; choose from {', '.join(VARIANTS)} (e.g. threads:1, objects:8).")
        if change.partition(":")[0] == "compile" and change.partition(":")[2] not in COMPILE_MODES:
            parser.error(
                f"unknown compile mode in {change!r}; choose from {', '.join(m for m in COMPILE_MODES if m)}."
            )
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    peak = args.peak_tflops if args.peak_tflops is not None else device_peak_tflops(device, dtype)
    quality = {}  # (sampler, steps, N) -> LPIPS, only from a study run at a single N
    if args.quality:
        results = json.load(open(args.quality))
        study = results.get("sampler_study")
        if not study:
            parser.error(f"{args.quality} has no sampler study; make it with `viewfusion-eval ... --sampler_study`.")
        for row in study:
            # Older results lack the row's N: then the evaluation's N, if there was only one.
            study_views = row.get("num_views") or results["config"]["num_views"]
            if len(study_views) != 1:
                continue
            paired = paired_lpips_difference(row, study[0])
            paired = f" ({paired[0]:+.3f} ± {paired[1]:.3f})" if paired else ""
            quality[(row["scheduler"], row["steps"], study_views[0])] = f"{row['lpips'][0]:.3f}{paired}"
        if not quality:
            parser.error(f"{args.quality}'s sampler study mixes several N; run it with a single --num_views.")

    rows = []
    for model in args.models:
        pipeline = load_model(model, args.pipeline, device, dtype)
        training_schedule = pipeline.scheduler.config
        train_steps = training_schedule.num_train_timesteps
        size = pipeline.unet.config.sample_size
        flops_per_pair = unet_flops_per_pair(pipeline.unet)
        first_row = len(rows)
        for n in args.num_views:
            views = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(n)).to(device, dtype)

            def reference_run():
                reference_loop(
                    pipeline.unet,
                    training_schedule,
                    pipeline.view_processor.to_pixel_range(views),
                    90.0,
                    args.reference_steps,
                    torch.Generator().manual_seed(0),
                )

            seconds, memory, unet_share = measure(reference_run, device, pipeline.unet, args.repeats)
            reference = seconds / args.reference_steps * train_steps
            rows.append(
                {
                    "model": model,
                    "views": n,
                    "method": "reference (per view, DDPM)",
                    "steps": train_steps,
                    "seconds": reference,
                    "speedup": 1.0,
                    "peak_mb": memory,
                    "outside_unet": 1 - unet_share,
                    "lpips": quality.get(("ddpm", train_steps, n), "") if model == "default" else "",
                    "note": f"timed over {args.reference_steps} steps",
                }
            )
            settings = [(name, steps, None) for name, steps in samplers] + [(*samplers[0], 2)]
            for name, steps, view_batch_size in settings:
                pipeline.scheduler = scheduler_from_name(name, training_schedule)
                seconds, memory, unet_share = measure(
                    lambda: pipeline(
                        views,
                        90.0,
                        num_inference_steps=steps,
                        view_batch_size=view_batch_size,
                        generator=torch.Generator().manual_seed(0),
                        output_type="pt",
                    ),
                    device,
                    pipeline.unet,
                    args.repeats,
                )
                method = "batched" + (f"/vbs={view_batch_size}" if view_batch_size else "") + f" ({name})"
                rows.append(
                    {
                        "model": model,
                        "views": n,
                        "method": method,
                        "steps": steps,
                        "seconds": seconds,
                        "speedup": reference / seconds,
                        "peak_mb": memory,
                        "outside_unet": 1 - unet_share,
                        "lpips": quality.get((name, steps, n), "") if model == "default" else "",
                        "note": "",
                    }
                )
            name, steps, _ = settings[0]
            pipeline.scheduler = scheduler_from_name(name, training_schedule)
            for change in args.variants:
                with variant(pipeline, change) as call_kwargs:
                    copies = call_kwargs.pop("objects", 1)
                    run = lambda: pipeline(
                        [views] * copies,
                        [90.0] * copies,
                        num_inference_steps=steps,
                        generator=torch.Generator().manual_seed(0),
                        output_type="pt",
                        **call_kwargs,
                    )
                    start = time.perf_counter()
                    run()  # the warm-up; for `compile`, this is where compilation happens
                    first_call = time.perf_counter() - start
                    seconds, memory, unet_share = measure(run, device, pipeline.unet, args.repeats, warm_up=False)
                    seconds /= copies
                rows.append(
                    {
                        "model": model,
                        "views": n,
                        "method": f"batched ({name}) + {change}",
                        "steps": steps,
                        "seconds": seconds,
                        "speedup": reference / seconds,
                        "peak_mb": memory,
                        "outside_unet": 1 - unet_share,
                        "lpips": "",
                        "note": f"first call {first_call:.1f} s" if change.startswith("compile") else "",
                    }
                )
        for row in rows[first_row:]:
            # `seconds` is per object: its pairs are its views, once per step.
            row["objects_per_second"] = 1 / row["seconds"]
            row["unet_gflops_per_pair"] = flops_per_pair / 1e9
            row["tflops"] = flops_per_pair * row["views"] * row["steps"] / row["seconds"] / 1e12
            row["share_of_peak"] = None if peak is None else row["tflops"] / peak

    hardware = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"Seconds per novel view, 1 target, {args.dtype}, {hardware}, torch {torch.__version__}, "
        f"peak {peak if peak is not None else 'unknown'} TFLOP/s"
    )
    print(
        "| model | N | method | steps | s / view | speed-up | peak MB | outside U-Net | LPIPS | note | objects / s | "
        "U-Net TFLOP/s | share of peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = "n/a" if r["share_of_peak"] is None else f"{100 * r['share_of_peak']:.1f}%"
        print(
            f"| {r['model']} | {r['views']} | {r['method']} | {r['steps']} | {r['seconds']:.2f} | {r['speedup']:.0f}x "
            "| "
            f"{r['peak_mb']:.0f} | {100 * r['outside_unet']:.1f}% | {r['lpips']} | {r['note']} | "
            f"{r['objects_per_second']:.2f} | {r['tflops']:.3g} | {share} |"
        )
    if args.output:
        with open(args.output, "w") as f:
            json.dump(
                {
                    "hardware": hardware,
                    "dtype": args.dtype,
                    "torch": torch.__version__,
                    "peak_tflops": peak,
                    "rows": rows,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
