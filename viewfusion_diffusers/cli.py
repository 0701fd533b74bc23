"""The `viewfusion` command: `generate`, `orbit`, `render` and `eval`.

    viewfusion generate --views a.png b.png --azimuth 90 --output novel.png
    viewfusion orbit --views a.png --output orbit.gif
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from tqdm.auto import tqdm

from .images import comparison_row
from .orbit import sample_orbit, save_gif
from .pipeline import SCHEDULERS, ViewFusionPipeline, scheduler_from_name

# The pipeline shipped in this repository's `pipelines/` folder; a Hub repo id when it is not on disk.
_SHIPPED_PIPELINE = Path(__file__).resolve().parent.parent / "pipelines" / "viewfusion-pybullet-64"
DEFAULT_PIPELINE = str(_SHIPPED_PIPELINE) if _SHIPPED_PIPELINE.is_dir() else "viewfusion-diffusers/viewfusion-pybullet-64"


class CommandError(Exception):
    """A mistake in the command line, reported as one line and exit status 2."""


def load_view_files(paths: list[str]) -> list[PIL.Image.Image]:
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


def load_pipeline(args) -> ViewFusionPipeline:
    pipeline = ViewFusionPipeline.from_pretrained(args.pipeline)
    pipeline.scheduler = scheduler_from_name(args.scheduler, pipeline.scheduler.config)
    return pipeline.to(args.device)


def save_image(image: PIL.Image.Image | np.ndarray, path: str) -> None:
    """Save through a temporary file in the same folder, so an interrupted run leaves no broken image."""
    image = image if isinstance(image, PIL.Image.Image) else PIL.Image.fromarray(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}")
    image.save(temporary, format=PIL.Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    os.replace(temporary, path)


def generate(args) -> None:
    views = load_view_files(args.views)
    pipeline = load_pipeline(args)
    resolution = pipeline.unet.config.sample_size
    out = pipeline(
        views, args.azimuth, num_inference_steps=args.steps, num_images_per_prompt=args.num_samples,
        generator=[torch.Generator().manual_seed(args.seed + i) for i in range(args.num_samples)], output_type="np",
    )
    output = Path(args.output)
    for i, image in enumerate(out.images):
        path = output if args.num_samples == 1 else output.with_name(f"{output.stem}_{i}{output.suffix}")
        save_image((image * 255).round().astype(np.uint8), path)
        print(f"Wrote {path}")
    if args.weights_output:
        inputs = [np.asarray(v.convert("RGB").resize((resolution, resolution))) for v in views]
        row = comparison_row(inputs, out.images[0], None, out.view_weights[0], num_slots=len(views))
        save_image(row, args.weights_output)
        print(f"Wrote {args.weights_output} (input views | novel view | weight of each input view)")


def orbit(args) -> None:
    """The paper's autoregressive orbit: each generated view joins the inputs of the next azimuth."""
    if not args.output.lower().endswith(".gif"):
        raise CommandError(f"--output {args.output!r}: orbits are written as animated GIF; use a .gif name")
    views = load_view_files(args.views)
    pipeline = load_pipeline(args)
    pipeline.set_progress_bar_config(disable=True)
    num_frames = round(360 / args.step_degrees)
    with tqdm(total=num_frames, desc="Orbit") as bar:
        generated = sample_orbit(pipeline, views, num_frames, args.start_azimuth, args.steps, args.max_views, args.seed,
                                 on_frame=lambda k: bar.update(1))
    save_gif(generated, args.output, args.frame_ms, size=args.frame_size)
    print(f"Wrote {args.output} ({len(generated)} frames)")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--views", nargs="+", required=True, help="Input view image files (any number, no poses).")
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="Pipeline folder or Hub repo id (default: the shipped one).")
    parser.add_argument("--scheduler", default="ddpm", choices=sorted(SCHEDULERS),
                        help="Sampler (default: ddpm, ancestral sampling on `--steps` of the training steps).")
    parser.add_argument("--steps", type=int, default=50, help="Denoising steps (default: 50).")
    parser.add_argument("--seed", type=int, default=0, help="Sampling seed.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="viewfusion", description="Novel view synthesis with ViewFusion.")
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="Generate the view from one azimuth.")
    add_sampling_arguments(gen)
    gen.add_argument("--azimuth", type=float, required=True, help="Target azimuth in degrees (NMR view k: 15 * k).")
    gen.add_argument("--output", required=True, help="Output image (with --num-samples > 1: NAME_i.png).")
    gen.add_argument("--num-samples", type=int, default=1, help="Samples to draw.")
    gen.add_argument("--weights-output", default=None, help="Also save the input views with their weight heatmaps.")

    orb = commands.add_parser("orbit", help="Generate a 360-degree orbit as an animated GIF.")
    add_sampling_arguments(orb)
    orb.add_argument("--output", required=True, help="Output .gif")
    orb.add_argument("--max-views", type=int, default=6, help="Views the U-Net sees per step: the given ones, then the newest generated.")
    orb.add_argument("--start-azimuth", type=float, default=0.0, help="Azimuth of the first frame (degrees).")
    orb.add_argument("--step-degrees", type=float, default=15.0, help="Azimuth step between frames (24 frames at 15).")
    orb.add_argument("--frame-size", type=int, default=128, help="Frame size in the GIF (pixels).")
    orb.add_argument("--frame-ms", type=int, default=120, help="Milliseconds per frame.")

    commands.add_parser("render", help="Render meshes into the NMR layout (see `viewfusion render --help`).", add_help=False)
    commands.add_parser("eval", help="Evaluate a pipeline (see `viewfusion eval --help`).", add_help=False)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `render` and `eval` keep their own parsers and entry points; hand them the rest of the line.
    if argv and argv[0] == "render":
        from .data.render import main as render_main

        return render_main(argv[1:]) or 0
    if argv and argv[0] == "eval":
        from .evaluation import main as eval_main

        return eval_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("steps", "num_samples", "max_views"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        generate(args) if args.command == "generate" else orbit(args)
    except (CommandError, ValueError, TypeError) as error:
        print(f"viewfusion {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
