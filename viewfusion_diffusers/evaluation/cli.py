"""`viewfusion-eval` (also `viewfusion eval`): the command line of the evaluation.

Parsing imports no torch, so `--help` and mistakes in the command line answer at once.
"""

import argparse
import os
import sys

from ..cli_help import DefaultsHelpFormatter
from ..constants import DEFAULT_PIPELINE
from ..schedulers import SCHEDULER_NAMES
from .methods import SAMPLER_STUDY_STEPS


DESCRIPTION = "PSNR / SSIM / LPIPS-VGG and pose accuracy per number of input views, with baselines and the ablation."


def default_output_dir(pipeline: str, split: str) -> str:
    """`eval/<pipeline folder or repo name>-<split>`, e.g. `eval/viewfusion-pybullet-64-test`.

    Example:
        ```py
        >>> default_output_dir("pipelines/viewfusion-pybullet-64/", "test")
        'eval/viewfusion-pybullet-64-test'
        ```
    """
    return os.path.join("eval", f"{os.path.basename(os.path.normpath(str(pipeline)))}-{split}")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `viewfusion-eval` options, on a new parser or on `parser` (`viewfusion eval` adds them to its own).

    Example:
        ```py
        >>> args = build_parser().parse_args(["--data_dir", "data/pybullet-64", "--posed"])
        ```
    """
    parser = parser or argparse.ArgumentParser(
        prog="viewfusion-eval", description=DESCRIPTION, formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument(
        "--pipeline",
        default=DEFAULT_PIPELINE,
        help="A ViewFusion pipeline folder or Hub repo id (default: the shipped pipeline).",
    )
    parser.add_argument("--data_dir", required=True, help="A dataset in the NMR layout (real NMR or rendered).")
    parser.add_argument("--split", default="test", help="Which split list to evaluate (default: test).")
    parser.add_argument("--categories", nargs="*", default=None, help="Only these category folders.")
    parser.add_argument("--num_views", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], help="Numbers of input views.")
    parser.add_argument("--num_objects", type=int, default=None, help="Evaluate this many objects (default: all).")
    parser.add_argument("--scheduler", default="ddpm", choices=SCHEDULER_NAMES, help="Sampler (default: ddpm).")
    parser.add_argument("--num_inference_steps", type=int, default=50, help="Denoising steps.")
    parser.add_argument("--seed", type=int, default=0, help="Chooses the evaluation set and the sampling noise.")
    parser.add_argument("--batch_size", type=int, default=8, help="Samples per pipeline call.")
    parser.add_argument("--device", default=None, help="torch device (default: the accelerate process's device).")
    parser.add_argument(
        "--lpips_weights", default=None, help="LPIPS safetensors (default: `viewfusion-lpips-weights`' output)."
    )
    parser.add_argument(
        "--posed",
        action="store_true",
        help="Also score posed mode (the input views' true azimuths given to the pipeline) on the same "
        "samples and noise: methods viewfusion_posed and equal_weights_posed. Needs a pipeline "
        "trained with poses (relative_pose=True in its U-Net config).",
    )
    parser.add_argument(
        "--compare_to",
        default=None,
        metavar="RESULTS_JSON",
        help="Another run's results.json on the same data, split, seed and --num_objects: adds this "
        "run's viewfusion (and viewfusion_posed) LPIPS minus that run's, paired per sample.",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="METHOD",
        help="Sample only these pipeline methods, e.g. `--methods viewfusion viewfusion_posed` to skip "
        "the equal-weights ablation (about half the time with --posed). Default: all of them "
        "(viewfusion, equal_weights, and their _posed variants with --posed). The baselines "
        "nearest_view and mean_view are always scored.",
    )
    parser.add_argument(
        "--channels_last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Run the U-Net in NHWC (channels_last): the same results up to float rounding, in about "
        "15%% less time on a CPU.",
    )
    parser.add_argument("--num_grid_rows", type=int, default=8, help="Samples shown in each image grid.")
    parser.add_argument(
        "--sampler_study",
        action="store_true",
        help="Also compare DDPM at all training steps with fast samplers at few steps on a subset.",
    )
    parser.add_argument(
        "--sampler_study_schedulers",
        nargs="+",
        default=["ddpm", "ddim"],
        choices=SCHEDULER_NAMES,
        help="Samplers in the study, each at every `--sampler_study_steps` (default: ddpm ddim).",
    )
    parser.add_argument("--sampler_study_samples", type=int, default=8, help="Samples in the sampler study.")
    parser.add_argument(
        "--sampler_study_steps",
        type=int,
        nargs="+",
        default=list(SAMPLER_STUDY_STEPS),
        help="Denoising steps at which the study runs each of `--sampler_study_schedulers`.",
    )
    parser.add_argument(
        "--output_dir",
        default=None,
        help="Where results.json, results.md and the grids go (default: eval/<pipeline name>-<split>).",
    )
    return parser


def parse_args(argv=None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Parse and check the options; mistakes exit with status 2 and a message naming the option.

    Example:
        ```py
        >>> parse_args(["--data_dir", "data/pybullet-64", "--posed"]).num_views
        [1, 2, 3, 4, 5, 6]
        ```
    """
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    return args


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Report values argparse cannot check through `parser.error`, and fill in the default `--output_dir`.

    Example:
        ```py
        >>> parser = build_parser()
        >>> check_args(parser.parse_args(["--data_dir", "data/pybullet-64"]), parser)
        ```
    """
    for name in ("num_inference_steps", "batch_size", "sampler_study_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.num_objects is not None and args.num_objects < 1:
        parser.error("--num_objects must be at least 1")
    if min(args.sampler_study_steps) < 1:
        parser.error("--sampler_study_steps must all be at least 1")
    if args.compare_to is not None and not os.path.isfile(args.compare_to):
        parser.error(f"--compare_to {args.compare_to!r} does not exist; give the results.json of an earlier run")
    if args.output_dir is None:
        args.output_dir = default_output_dir(args.pipeline, args.split)


def run(args: argparse.Namespace) -> int:
    """Evaluate as the parsed `args` say and print the tables; 2 on a bad pipeline, dataset or setting.

    Example:
        ```py
        >>> args = parse_args(["--data_dir", "data/pybullet-64", "--num_objects", "1", "--num_views", "3",
        ...                    "--num_inference_steps", "2", "--device", "cpu"])  # all objects, 50 steps: real numbers
        >>> run(args)
        | method | num_views | n | PSNR ↑ | SSIM ↑ | LPIPS ↓ | pose ±15° ↑ | s / sample |
        |---|---|---|---|---|---|---|---|
        | viewfusion | 3 | 1 | ... |
        ...
        Wrote eval/viewfusion-pybullet-64-test/results.md
        0
        >>> run(parse_args(["--data_dir", "data/missing"]))  # the message goes to stderr
        2
        ```
    """
    from .methods import SamplerStudySettings
    from .report import results_table, sampler_study_table
    from .runner import run_evaluation

    study = None
    if args.sampler_study:
        study = SamplerStudySettings(
            tuple(args.sampler_study_schedulers), tuple(args.sampler_study_steps), args.sampler_study_samples
        )
    try:
        results = run_evaluation(
            args.pipeline,
            args.data_dir,
            args.output_dir,
            split=args.split,
            categories=args.categories,
            num_views=tuple(args.num_views),
            num_objects=args.num_objects,
            scheduler=args.scheduler,
            num_inference_steps=args.num_inference_steps,
            seed=args.seed,
            batch_size=args.batch_size,
            device=args.device,
            lpips_weights=args.lpips_weights,
            posed=args.posed,
            num_grid_rows=args.num_grid_rows,
            sampler_study=study,
            compare_to=args.compare_to,
            methods=None if args.methods is None else tuple(args.methods),
            channels_last=args.channels_last,
        )
    except (ValueError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"viewfusion-eval: error: {message}", file=sys.stderr)
        return 2
    if results:
        print(results_table(results["records"]))
        if results["sampler_study"]:
            print(sampler_study_table(results["sampler_study"]))
        print(f"Wrote {os.path.join(args.output_dir, 'results.md')}")
    return 0


def main(argv=None) -> int:
    """`viewfusion-eval`'s entry point.

    Example:
        ```py
        >>> # For real numbers leave out --num_objects (default: all objects) and --num_inference_steps (50).
        >>> main(["--data_dir", "data/pybullet-64", "--posed", "--methods", "viewfusion", "viewfusion_posed",
        ...       "--num_objects", "1", "--num_views", "3", "--num_inference_steps", "2", "--device", "cpu"])
        | method | num_views | n | PSNR ↑ | SSIM ↑ | LPIPS ↓ | pose ±15° ↑ | s / sample |
        |---|---|---|---|---|---|---|---|
        | viewfusion | 3 | 1 | ... |
        | viewfusion_posed | 3 | 1 | ... |
        | nearest_view | 3 | 1 | 11.88 ± 0.00 | 0.3678 ± 0.0000 | 0.1714 ± 0.0000 | 100% ± 0 | 0.00 |
        | mean_view | 3 | 1 | 12.73 ± 0.00 | 0.2397 ± 0.0000 | 0.2859 ± 0.0000 | 0% ± 0 | 0.00 |
        Wrote eval/viewfusion-pybullet-64-test/results.md
        0
        ```
    """
    return run(parse_args(argv))
