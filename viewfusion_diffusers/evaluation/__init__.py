"""`viewfusion-eval`: PSNR / SSIM / LPIPS-VGG and pose accuracy per number of input views, with baselines and
the ablation.

    viewfusion-eval --pipeline pipelines/viewfusion-pybullet-64 --data_dir data/pybullet-64

The evaluation set (objects, target view, input views for each N) depends only on the dataset, the split and
the seed, so tables from different pipelines line up. Every method is scored on the same samples and noise:

- `viewfusion`: the pipeline with its learned fusion weights (the paper's method);
- `equal_weights`: the same pipeline and noise with `weighting=False` (the paper's ablation);
- `viewfusion_posed`, `equal_weights_posed` (with `--posed`): the same, told the input views' true azimuths;
- `nearest_view`: the input view whose true azimuth is closest to the target's (an oracle: it uses poses);
- `mean_view`: the pixel average of the input views.

Under `accelerate launch` the samples are split between processes and the results gathered, so N GPUs
evaluate N times faster; every sample is seeded by its own index, so the numbers do not depend on how the work
is split.

The modules, by concern: `samples` (loading a batch, the baselines), `scoring` (metrics, pose accuracy),
`statistics` (confidence intervals, paired differences), `report` (tables, grids, files), `sampler_study`,
`runner` (the methods over the dataset), `cli` (the command line). Only `cli` is loaded with this package, so
parsing needs no torch; the rest is loaded on first use.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_module_attributes
from .cli import build_parser, main, parse_args  # noqa: F401 (`viewfusion-eval` is `viewfusion_diffusers.evaluation:main`)


_import_structure = {
    "methods": ["METHODS", "EvalMethod", "SamplerStudySettings", "pipeline_methods"],
    "report": ["labelled_grid", "paired_table", "results_table", "sampler_study_table", "write_results"],
    "runner": ["evaluate_batch", "pipeline_fingerprint", "run_evaluation"],
    "sampler_study": ["run_sampler_study"],
    "samples": ["EvalBatch", "baseline_predictions", "circular_view_distance", "nearest_input_view"],
    "scoring": ["closest_view_errors", "score", "score_predictions", "view_distances"],
    "statistics": ["mean_and_ci", "paired_differences", "paired_lpips_difference"],
}

__all__ = sorted(
    ["build_parser", "main", "parse_args", *(name for names in _import_structure.values() for name in names)]
)

if TYPE_CHECKING:
    from .methods import METHODS, EvalMethod, SamplerStudySettings, pipeline_methods
    from .report import labelled_grid, paired_table, results_table, sampler_study_table, write_results
    from .runner import evaluate_batch, pipeline_fingerprint, run_evaluation
    from .sampler_study import run_sampler_study
    from .samples import EvalBatch, baseline_predictions, circular_view_distance, nearest_input_view
    from .scoring import closest_view_errors, score, score_predictions, view_distances
    from .statistics import mean_and_ci, paired_differences, paired_lpips_difference


__getattr__, __dir__ = lazy_module_attributes(__name__, _import_structure, globals())
