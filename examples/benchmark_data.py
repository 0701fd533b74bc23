"""Data pipeline throughput: render seconds per object, loader and in-memory sampler samples per second.

    python examples/benchmark_data.py --data_dir data/pybullet-64

Renders a few objects into a temporary folder, then times `ViewFusionTrainDataset` through a torch
`DataLoader` (batch 8, `collate_views`) with 0 and 2 workers on `--data_dir`, and the training script's
default path: the split read once into memory (`load_views_in_memory`, timed) and batches drawn from it by
`InMemoryViewSampler` (on `--device`). Prints a table; `--output` writes JSON. Compare the samples per second
with what a training step consumes (`examples/benchmark_training.py`): the data must be faster, or training
waits for it.
"""

import argparse
import json
import tempfile
import time

import torch

from viewfusion_diffusers.data import NMRDataset, ViewFusionTrainDataset, collate_views, render_dataset
from viewfusion_diffusers.data.samplers import InMemoryViewSampler, load_views_in_memory


def loader_throughput(dataset, num_workers: int, batch_size: int, num_batches: int) -> float:
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_views,
        generator=torch.Generator().manual_seed(0),
    )
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    return num_batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="A rendered or NMR dataset for the loader timing.")
    parser.add_argument("--render_objects", type=int, default=10, help="Objects to render for the render timing.")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_batches", type=int, default=30)
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="Where the in-memory views live and batches are drawn.",
    )
    parser.add_argument("--output", default=None, help="Write the results as JSON here.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        render = render_dataset(scratch, source="random_urdfs", limit=args.render_objects, show_progress=False)
    dataset = ViewFusionTrainDataset(NMRDataset(args.data_dir, split="train"), max_views=6)
    rows = {"render_seconds_per_object": round(render["seconds_per_object"], 3)}
    for workers in (0, 2):
        rows[f"loader_samples_per_second_{workers}_workers"] = round(
            loader_throughput(dataset, workers, args.batch_size, args.num_batches), 1
        )
    start = time.perf_counter()
    views = load_views_in_memory(dataset.objects, device=args.device, show_progress=False)
    rows["in_memory_load_seconds"] = round(time.perf_counter() - start, 2)
    sampler = InMemoryViewSampler(views, args.batch_size, max_views=6)
    sampler.batch(0)
    start = time.perf_counter()
    for step in range(1, args.num_batches + 1):
        batch = sampler.batch(step)
    batch.input_views.sum().item()  # wait for the device's queue
    rows["in_memory_samples_per_second"] = round(args.num_batches * args.batch_size / (time.perf_counter() - start), 1)
    print("| measure | value |\n|---|---|")
    for name, value in rows.items():
        print(f"| {name.replace('_', ' ')} | {value} |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"args": vars(args), "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
