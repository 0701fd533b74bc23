"""The `viewfusion` command: `render`, `eval`, `generate`, `orbit` and `convert`.

    viewfusion generate --views a.png b.png --azimuth 90 --output novel.png
    viewfusion generate --views a.png b.png --view-azimuths 0 90 --azimuth 180 --output novel.png
    viewfusion orbit --views a.png --output orbit.gif
    viewfusion render --output_dir data/pybullet-64
    viewfusion eval --data_dir data/pybullet-64 --posed
    viewfusion convert --checkpoint bronemos/view-fusion/best_model_all.pt --output viewfusion-nmr

The command line is parsed before anything heavy is imported: torch, diffusers and pybullet are loaded only by
the subcommand that runs, so `--help` and mistakes in the command line answer at once.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

from .cli_help import DefaultsHelpFormatter
from .constants import AZIMUTH_STEP_DEGREES, DEFAULT_PIPELINE, NUM_VIEWS
from .data import render as render_cli
from .evaluation import cli as eval_cli
from .schedulers import SCHEDULER_NAMES


__all__ = ["build_parser", "main"]


def azimuth_help(target_option: str) -> str:
    """The epilog of `generate` (`--azimuth`) and `orbit` (`--start-azimuth`): what an azimuth means."""
    return (
        f"Azimuths are in degrees. Without --view-azimuths, {target_option} is absolute, in the frame of the training "
        f"data (view k of an NMR-layout object is at {AZIMUTH_STEP_DEGREES:g} k degrees; the light is fixed in that "
        "frame), and the views' own azimuths are left to the model. With --view-azimuths (one per view, needs a "
        f"pipeline trained with poses), {target_option} is in the frame of the given azimuths: --view-azimuths 0 "
        f"{target_option} 90 asks for the view 90 degrees round from the first view."
    )


class CommandError(Exception):
    """A mistake in the command line, reported as one line and exit status 2."""


def load_view_files(paths: list[str]):
    """The view files as PIL images, or a `CommandError` naming the file that is missing or not an image.

    Example:
        ```py
        >>> [view.size for view in load_view_files(["examples/views/object008_az000.png"])]
        [(64, 64)]
        ```
    """
    import PIL.Image

    views = []
    for path in paths:
        if not os.path.isfile(path):
            raise CommandError(f"view file {path!r} does not exist")
        try:
            with PIL.Image.open(path) as image:
                image.load()
                views.append(image.copy())
        except (PIL.UnidentifiedImageError, OSError) as error:
            raise CommandError(f"cannot read {path!r} as an image ({error})") from error
    return views


def image_format(path: str, option: str) -> str:
    """The PIL format an output file name asks for (`.png` -> PNG, `.jpg` -> JPEG, ...), or a `CommandError`
    naming the option and listing the extensions PIL can write.

    Example:
        ```py
        >>> image_format("novel.jpg", "--output")
        'JPEG'
        ```
    """
    from .file_utils import image_format as format_of

    try:
        return format_of(path)
    except ValueError as error:
        raise CommandError(f"{option} {error}") from error


def load_pipeline(args):
    """The pipeline of `--pipeline` with the `--scheduler` sampler, on `--device`.

    Example:
        ```py
        >>> pipe = load_pipeline(build_parser().parse_args(["generate", "--views", "a.png", "--azimuth", "90",
        ...                                                 "--output", "b.png", "--scheduler", "ddim"]))
        ```
    """
    import torch

    from .pipeline import ViewFusionPipeline
    from .schedulers import scheduler_from_name

    pipeline = ViewFusionPipeline.from_pretrained(args.pipeline)
    if args.view_azimuths is not None and not pipeline.unet.config.relative_pose:
        raise CommandError(
            f"--view-azimuths needs a pipeline trained with poses (relative_pose=True); {args.pipeline} "
            "was trained without them: leave --view-azimuths out"
        )
    pipeline.scheduler = scheduler_from_name(args.scheduler, pipeline.scheduler.config)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return pipeline.to(device)


def check_sampling_args(args, parser: argparse.ArgumentParser) -> None:
    """Mistakes that argparse cannot see, reported through `parser.error` before anything is loaded.

    Example:
        ```py
        >>> parser = argparse.ArgumentParser(prog="viewfusion generate")
        >>> # stderr: "viewfusion generate: error: --view-azimuths got 2 azimuths for 1 --views; give one per ..."
        >>> check_sampling_args(argparse.Namespace(views=["a.png"], view_azimuths=[0.0, 90.0]), parser)
        Traceback (most recent call last):
        SystemExit: 2
        ```
    """
    for name in ("steps", "num_samples", "max_views"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("azimuth", "start_azimuth", "step_degrees"):
        value = getattr(args, name, 0.0)
        if not math.isfinite(value):
            parser.error(f"--{name.replace('_', '-')} must be a finite number of degrees, got {value}")
    step = getattr(args, "step_degrees", None)
    if step is not None and not (step > 0 and math.isclose(360 / step, round(360 / step))):
        allowed = ", ".join(f"{360 / n:g}" for n in range(1, 361) if 360 % n == 0 and 360 / n >= 5)
        parser.error(
            f"--step-degrees {step:g} does not divide the circle into whole frames; use a step that goes "
            f"into 360 a whole number of times ({allowed}, or a smaller one such as 7.5)"
        )
    if args.view_azimuths is not None:
        if len(args.view_azimuths) != len(args.views):
            parser.error(
                f"--view-azimuths got {len(args.view_azimuths)} azimuths for {len(args.views)} --views; "
                "give one per view, in the same order"
            )
        if not all(math.isfinite(a) for a in args.view_azimuths):
            parser.error(f"--view-azimuths must be finite numbers of degrees, got {args.view_azimuths}")


def generate(args) -> None:
    """`viewfusion generate`: the view from one azimuth, and optionally the inputs with their weight maps."""
    image_format(args.output, "--output")
    if args.weights_output:
        image_format(args.weights_output, "--weights-output")
    views = load_view_files(args.views)
    import numpy as np
    import torch

    from .file_utils import save_image

    pipeline = load_pipeline(args)
    out = pipeline(
        views,
        args.azimuth,
        input_azimuths=args.view_azimuths,
        num_inference_steps=args.steps,
        num_images_per_prompt=args.num_samples,
        output_type="np",
        generator=[torch.Generator().manual_seed(args.seed + i) for i in range(args.num_samples)],
    )
    output = Path(args.output)
    for i, image in enumerate(out.images):
        path = output if args.num_samples == 1 else output.with_name(f"{output.stem}_{i}{output.suffix}")
        save_image((image * 255).round().astype(np.uint8), str(path))
        print(f"Wrote {path}")
    if args.weights_output:
        from .evaluation.report import labelled_grid
        from .images import comparison_row

        # The views as the model saw them: composited on white and resized by the pipeline's own preprocessing.
        model_views = pipeline.view_processor.to_unit_range(
            pipeline.view_processor.preprocess(views, *pipeline.sample_size)
        )
        inputs = list(model_views.permute(0, 2, 3, 1).cpu().numpy())
        row = comparison_row(inputs, out.images[0], None, out.view_weights[0], num_slots=len(views))
        save_image(labelled_grid([row], num_slots=len(views), with_truth=False), args.weights_output)
        print(f"Wrote {args.weights_output} (input views | novel view | weight of each input view)")


def orbit(args) -> None:
    """`viewfusion orbit`: the paper's autoregressive orbit, each generated view joining the next one's inputs."""
    if Path(args.output).suffix.lower() != ".gif":
        raise CommandError(f"--output {args.output!r}: orbits are written as animated GIF; use a .gif name")
    views = load_view_files(args.views)
    from tqdm.auto import tqdm

    from .orbit import sample_orbit, save_gif

    pipeline = load_pipeline(args)
    pipeline.set_progress_bar_config(disable=True)
    num_frames = round(360 / args.step_degrees)  # a whole number: check_sampling_args saw to it
    start = time.perf_counter()
    # tqdm's estimate of the remaining time is right after the first frame: every frame costs the same.
    with tqdm(total=num_frames, desc="Orbit", unit="frame") as bar:
        generated = sample_orbit(
            pipeline,
            views,
            num_frames,
            args.start_azimuth,
            args.steps,
            args.max_views,
            args.seed,
            on_frame=lambda k: bar.update(1),
            input_azimuths=args.view_azimuths,
        )
    save_gif(generated, args.output, args.frame_ms, size=args.frame_size)
    print(f"Wrote {args.output} ({len(generated)} frames in {time.perf_counter() - start:.1f} s)")


def convert(args) -> None:
    """`viewfusion convert`: the authors' checkpoint as an ordinary pipeline folder, optionally pushed to the Hub."""
    from .conversion import model_card_body
    from .hub_utils import make_model_card, save_pipeline_atomically
    from .pipeline import ViewFusionPipeline

    # Converted whole in memory before anything is written: a bad file leaves --output untouched.
    pipeline = ViewFusionPipeline.from_single_file(args.checkpoint, config_file=args.config)
    num_parameters = sum(p.numel() for p in pipeline.unet.parameters())
    card = make_model_card(
        "ViewFusion: the authors' NMR model",
        model_card_body(args.checkpoint, args.config, num_parameters),
        repo_id=args.push_to_hub or args.output,
    )
    save_pipeline_atomically(pipeline, args.output, card)
    print(
        f"Wrote {args.output} ({num_parameters / 1e6:.1f}M parameters, "
        f"{pipeline.scheduler.config.num_train_timesteps}-step "
        "schedule); load it with ViewFusionPipeline.from_pretrained"
    )
    if args.push_to_hub:
        from huggingface_hub import create_repo, upload_folder

        repo_id = create_repo(args.push_to_hub, exist_ok=True).repo_id
        upload_folder(
            repo_id=repo_id, folder_path=args.output, commit_message="ViewFusion: the authors' weights, converted"
        )
        print(f"Pushed {args.output} to https://huggingface.co/{repo_id}")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--views", nargs="+", required=True, help="Input view image files (any number).")
    parser.add_argument(
        "--view-azimuths",
        type=float,
        nargs="+",
        default=None,
        metavar="DEGREES",
        help="The azimuth of each input view, one per --views in the same order (posed mode; needs a "
        "pipeline trained with poses). Without it the views' poses are left to the model.",
    )
    parser.add_argument(
        "--pipeline",
        default=DEFAULT_PIPELINE,
        help="Pipeline folder or Hub repo id (default: the shipped one, %(default)s).",
    )
    parser.add_argument(
        "--scheduler",
        default="ddpm",
        choices=SCHEDULER_NAMES,
        help="Sampler (default: ddpm, ancestral sampling on `--steps` of the training steps).",
    )
    parser.add_argument("--steps", type=int, default=50, help="Denoising steps.")
    parser.add_argument("--seed", type=int, default=0, help="Sampling seed.")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when there is one, else cpu).")


def build_parser() -> argparse.ArgumentParser:
    """The `viewfusion` parser: one subparser per subcommand, each with its own options.

    Example:
        ```py
        >>> args = build_parser().parse_args(["generate", "--views", "a.png", "--azimuth", "90", "--output", "b.png"])
        >>> args.command
        'generate'
        ```
    """
    parser = argparse.ArgumentParser(
        prog="viewfusion", description="Novel view synthesis with ViewFusion.", formatter_class=DefaultsHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{render,eval,generate,orbit,convert}")

    render = commands.add_parser(
        "render",
        help="Render meshes into the NMR layout (as viewfusion-render).",
        description="Render meshes in the NMR layout.",
        formatter_class=DefaultsHelpFormatter,
    )
    render_cli.build_parser(render)
    render.set_defaults(run=lambda args: render_cli.run(args, render))

    evaluate = commands.add_parser(
        "eval",
        help="Evaluate a pipeline (as viewfusion-eval).",
        description=eval_cli.DESCRIPTION,
        formatter_class=DefaultsHelpFormatter,
    )
    eval_cli.build_parser(evaluate)
    evaluate.set_defaults(run=lambda args: eval_cli.check_args(args, evaluate) or eval_cli.run(args))

    gen = commands.add_parser(
        "generate",
        help="Generate the view from one azimuth.",
        epilog=azimuth_help("--azimuth"),
        formatter_class=DefaultsHelpFormatter,
        description="Generate the view of an object from one azimuth, given views of it.",
    )
    add_sampling_arguments(gen)
    gen.add_argument(
        "--azimuth",
        type=float,
        required=True,
        help="Target azimuth in degrees: absolute in the training data's frame, or with --view-azimuths "
        "in their frame (see below).",
    )
    gen.add_argument(
        "--output", required=True, help="Output image, format from its extension (with --num-samples > 1: NAME_i.EXT)."
    )
    gen.add_argument("--num-samples", type=int, default=1, help="Samples to draw.")
    gen.add_argument("--weights-output", default=None, help="Also save the input views with their weight heatmaps.")
    gen.set_defaults(run=generate, check=lambda args: check_sampling_args(args, gen))

    orb = commands.add_parser(
        "orbit",
        help="Generate a 360-degree orbit as an animated GIF.",
        epilog=azimuth_help("--start-azimuth"),
        formatter_class=DefaultsHelpFormatter,
        description="Generate an orbit around an object, each new view joining the inputs.",
    )
    add_sampling_arguments(orb)
    orb.add_argument("--output", required=True, help="Output .gif")
    orb.add_argument(
        "--max-views",
        type=int,
        default=6,
        help="Views the U-Net sees per step: the given ones, then the newest generated.",
    )
    orb.add_argument(
        "--start-azimuth", type=float, default=0.0, help="Azimuth of the first frame, in degrees (see below)."
    )
    orb.add_argument(
        "--step-degrees",
        type=float,
        default=AZIMUTH_STEP_DEGREES,
        help=f"Azimuth step between frames ({NUM_VIEWS} frames at {AZIMUTH_STEP_DEGREES:g}).",
    )
    orb.add_argument("--frame-size", type=int, default=128, help="Frame size in the GIF (pixels).")
    orb.add_argument("--frame-ms", type=int, default=120, help="Milliseconds per frame.")
    orb.set_defaults(run=orbit, check=lambda args: check_sampling_args(args, orb))

    conv = commands.add_parser(
        "convert",
        help="Convert the authors' checkpoint into a pipeline folder.",
        formatter_class=DefaultsHelpFormatter,
        description="Convert a checkpoint of the authors' code (their best_model_all.pt) into an "
        "ordinary pipeline folder that ViewFusionPipeline.from_pretrained loads.",
    )
    conv.add_argument(
        "--checkpoint",
        required=True,
        help="The authors' checkpoint: a file, or a Hub file such as bronemos/view-fusion/best_model_all.pt.",
    )
    conv.add_argument(
        "--config",
        default=None,
        help="The authors' YAML config it was trained with (default: the one they published with the paper's model).",
    )
    conv.add_argument("--output", required=True, help="The pipeline folder to write.")
    conv.add_argument(
        "--push_to_hub", default=None, metavar="REPO_ID", help="Also upload the folder to this Hub repo."
    )
    conv.set_defaults(run=convert)
    return parser


def main(argv=None) -> int:
    """`viewfusion`'s entry point: parse, then run the chosen subcommand; 2 for a mistake in the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "check"):
        args.check(args)
    try:
        return args.run(args) or 0
    except (CommandError, ValueError, TypeError, FileNotFoundError) as error:
        print(f"viewfusion {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
