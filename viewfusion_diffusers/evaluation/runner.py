"""Running the methods on the evaluation samples, across the processes of an `accelerate launch`."""

import hashlib
import json
import os
import time

import torch
from tqdm.auto import tqdm

from ..data import NMRDataset, make_eval_samples
from ..dependencies import import_optional
from ..distributed import cpu_distributed, gather
from ..metrics import LPIPS
from ..pipeline import ViewFusionPipeline
from ..schedulers import scheduler_from_name
from .methods import EvalMethod, SamplerStudySettings, method_order, pipeline_methods
from .report import grid_rows, write_results
from .sampler_study import run_sampler_study
from .samples import EvalBatch, baseline_predictions, sample_pipeline
from .scoring import score_predictions
from .statistics import check_comparable, paired_differences


# The methods whose outputs the image grids show: the paper's method, unposed and posed.
GRID_METHODS = ("viewfusion", "viewfusion_posed")


def pipeline_fingerprint(pipeline: ViewFusionPipeline) -> str:
    """sha256 of the U-Net's weights and config: which network made a table, whatever folder it came from.

    The config's bookkeeping keys (`_name_or_path`, `_diffusers_version`, ...: those starting with `_`) are left
    out, so the same weights hash the same from any path or diffusers version.

    Example:
        ```py
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> fingerprint = pipeline_fingerprint(pipe)
        >>> fingerprint[:12]
        'e4d8f825963c'
        >>> pipe.save_pretrained("outputs/copy")
        >>> pipeline_fingerprint(ViewFusionPipeline.from_pretrained("outputs/copy")) == fingerprint  # from any folder
        True
        ```
    """
    config = {key: value for key, value in pipeline.unet.config.items() if not key.startswith("_")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(pipeline.unet.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


def is_posed_pipeline(pipeline: ViewFusionPipeline) -> bool:
    """Whether the pipeline's U-Net takes the input views' azimuths (trained with `relative_pose=True`).

    Example:
        ```py
        >>> is_posed_pipeline(ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64"))
        True
        ```
    """
    return bool(getattr(pipeline.unet.config, "relative_pose", False))


def evaluate_batch(
    pipeline,
    batch: EvalBatch,
    seeds,
    lpips: LPIPS,
    methods=pipeline_methods(),
    num_inference_steps: int = 50,
    num_grid_slots: int | None = None,
):
    """Score the pipeline `methods` and the baselines on a batch; returns per-sample records and, per method of
    `GRID_METHODS` that ran, `(num_views, comparison row)` for the image grids.

    Example:
        ```py
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(3,), num_objects=1))
        >>> methods = [EvalMethod("viewfusion"), EvalMethod("viewfusion_posed", posed=True)]
        >>> records, grids = evaluate_batch(pipe, batch, seeds=[0], lpips=LPIPS.from_pretrained(), methods=methods,
        ...                                 num_inference_steps=2)  # 50 steps for real numbers
        >>> [(record["method"], round(record["lpips"], 2)) for record in records]
        [('viewfusion', 0.59), ('viewfusion_posed', 0.58), ('nearest_view', 0.17), ('mean_view', 0.29)]
        >>> {name: [(num_views, row.shape) for num_views, row in rows] for name, rows in grids.items()}
        {'viewfusion': [(3, (64, 512, 3))], 'viewfusion_posed': [(3, (64, 512, 3))]}
        ```
    """
    num_grid_slots = num_grid_slots or max(s.num_views for s in batch.samples)
    predictions, weights, seconds = {}, {}, {}
    for method in methods:
        start = time.perf_counter()
        predictions[method.name], weights[method.name] = sample_pipeline(
            pipeline, batch, seeds, method, num_inference_steps
        )
        seconds[method.name] = (time.perf_counter() - start) / len(batch.samples)
    predictions.update(baseline_predictions(batch))
    records = score_predictions(batch, predictions, lpips, seconds)
    grids = {
        name: grid_rows(batch, predictions[name], weights[name], num_grid_slots)
        for name in GRID_METHODS
        if name in weights
    }
    return records, grids


def select_methods(available: tuple[EvalMethod, ...], names=None) -> tuple[EvalMethod, ...]:
    """The methods of `available` named in `names` (all of them when `names` is None), in table order.

    Example:
        ```py
        >>> [m.name for m in select_methods(pipeline_methods(posed=True), ["viewfusion_posed", "viewfusion"])]
        ['viewfusion', 'viewfusion_posed']
        ```
    """
    if names is None:
        return available
    unknown = sorted(set(names) - {m.name for m in available})
    if unknown:
        raise ValueError(
            f"methods {unknown} are not among this evaluation's pipeline methods "
            f"{[m.name for m in available]} (the _posed ones need --posed)."
        )
    return tuple(m for m in available if m.name in set(names))


def run_evaluation(
    pipeline: str,
    data_dir: str,
    output_dir: str,
    *,
    split: str = "test",
    categories: list[str] | None = None,
    num_views=(1, 2, 3, 4, 5, 6),
    num_objects: int | None = None,
    scheduler: str = "ddpm",
    num_inference_steps: int = 50,
    seed: int = 0,
    batch_size: int = 8,
    device: str | None = None,
    lpips_weights: str | None = None,
    posed: bool = False,
    num_grid_rows: int = 8,
    sampler_study: SamplerStudySettings | None = None,
    compare_to: str | None = None,
    methods: tuple[str, ...] | None = None,
    channels_last: bool = True,
) -> dict:
    """Evaluate a pipeline (folder or Hub id) on a dataset in the NMR layout; on the main process writes
    results.json, results.md and the grids to `output_dir` and returns the results (`{}` on the others).

    With `posed`, every pipeline method also runs in posed mode (the input views' true azimuths given) on the
    same samples and noise. `compare_to` is another run's results.json, on the same samples, that this run's
    `viewfusion` (and `viewfusion_posed`) are compared with sample by sample. `methods` names the pipeline methods
    to sample (default: all that `posed` gives, see `pipeline_methods`); the baselines are
    always scored. `channels_last` runs the U-Net in NHWC: the same arithmetic up to float rounding, in about
    15% less time on a CPU, where the U-Net's convolutions are about 95% of an evaluation's time.

    Example:
        ```py
        >>> results = run_evaluation("pipelines/viewfusion-pybullet-64", "data/pybullet-64", "eval/test",
        ...                          num_views=(3,), num_objects=1, num_inference_steps=2)  # 50 steps for real numbers
        >>> results["num_samples"], [record["method"] for record in results["records"]]
        (1, ['viewfusion', 'equal_weights', 'nearest_view', 'mean_view'])
        >>> sorted(os.listdir("eval/test"))
        ['grid_3_views.png', 'results.json', 'results.md']
        ```
    """
    # accelerate splits the samples between the processes of an `accelerate launch` (one process otherwise).
    state = import_optional("accelerate", "eval").PartialState(cpu=cpu_distributed())
    device = torch.device(device) if device else state.device
    config = {
        "pipeline": str(pipeline),
        "data_dir": os.path.abspath(data_dir),
        "split": split,
        "categories": categories,
        "num_views": list(num_views),
        "num_objects": num_objects,
        "scheduler": scheduler,
        "num_inference_steps": num_inference_steps,
        "seed": seed,
        "batch_size": batch_size,
        "posed": posed,
        "lpips_weights": lpips_weights,
        "sampler_study": None if sampler_study is None else vars(sampler_study),
        "methods": None if methods is None else list(methods),
        "channels_last": channels_last,
    }
    chosen_methods = select_methods(pipeline_methods(posed=posed), methods)
    other_run = None
    if compare_to is not None:
        with open(compare_to) as f:
            other_run = json.load(f)
        check_comparable(config, other_run["config"], other_name=compare_to)

    dataset = NMRDataset(data_dir, split=split, categories=categories)
    samples = make_eval_samples(dataset, num_views=tuple(num_views), num_objects=num_objects, seed=seed)
    loaded = ViewFusionPipeline.from_pretrained(pipeline).to(device)
    if posed and not is_posed_pipeline(loaded):
        raise ValueError(
            f"posed=True needs a pipeline whose U-Net takes poses (relative_pose=True in its config); {pipeline} has "
            "none. Evaluate it with posed=False, or evaluate a pipeline trained with relative_pose=True."
        )
    loaded.scheduler = scheduler_from_name(scheduler, loaded.scheduler.config)
    if channels_last:
        loaded.unet.to(memory_format=torch.channels_last)
    loaded.set_progress_bar_config(disable=True)
    lpips = LPIPS.from_pretrained(lpips_weights).to(device).eval()
    seeds = [seed * 1_000_003 + i for i in range(len(samples))]
    records, grids = [], {}
    with state.split_between_processes(list(range(len(samples)))) as shard:
        bar = tqdm(range(0, len(shard), batch_size), desc="Evaluating", disable=not state.is_local_main_process)
        for start in bar:
            indices = shard[start : start + batch_size]
            batch = EvalBatch.load(dataset, [samples[i] for i in indices], device)
            batch_records, batch_grids = evaluate_batch(
                loaded,
                batch,
                [seeds[i] for i in indices],
                lpips,
                chosen_methods,
                num_inference_steps,
                num_grid_slots=max(num_views),
            )
            records += batch_records
            for name, rows in batch_grids.items():
                # Only the first `num_grid_rows` per N are drawn: keep no more, so that little is gathered.
                kept = grids.setdefault(name, [])
                for num_rows_views, row in rows:
                    if sum(n == num_rows_views for n, _ in kept) < num_grid_rows:
                        kept.append((num_rows_views, row))
    records = gather(records, state)
    grids = {name: gather(rows, state) for name, rows in grids.items()}

    study = None
    if sampler_study is not None:
        study = run_sampler_study(loaded, dataset, samples, seeds, lpips, device, state, sampler_study, batch_size)
    if not state.is_main_process:
        return {}
    records.sort(key=lambda r: (method_order(r["method"]), r["num_views"], r["category"], r["object_id"]))
    results = {
        "config": config,
        "pipeline": {"id": str(pipeline), "sha256": pipeline_fingerprint(loaded)},
        "num_samples": len(samples),
        "records": records,
        "sampler_study": study,
    }
    if other_run is not None:
        # Refuse runs on different samples before anything is written.
        for method in ("viewfusion", "viewfusion_posed"):
            paired_differences(records, method, method, reference_records=other_run["records"])
    write_results(results, grids, output_dir, num_slots=max(num_views), max_rows=num_grid_rows, compare_to=other_run)
    return results
