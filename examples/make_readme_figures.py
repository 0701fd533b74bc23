"""The README's pictures, made with the shipped pipeline from the example views.

    python examples/make_readme_figures.py --output_dir examples/images

- `quickstart.png`: what the README's main commands make, next to the true view, under a row naming the
  columns: the three input views | the generated view at 270 degrees | the true view at 270 degrees | the
  weight map of each input view; a second row gives the pipeline the views' azimuths (0, 90, 180) when it
  takes poses.
- `orbit.gif`: the paper's autoregressive orbit from the view at azimuth 0.
"""

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from viewfusion_diffusers import ViewFusionPipeline, scheduler_from_name
from viewfusion_diffusers.constants import DEFAULT_PIPELINE
from viewfusion_diffusers.evaluation.report import labelled_grid
from viewfusion_diffusers.file_utils import save_image
from viewfusion_diffusers.images import comparison_row
from viewfusion_diffusers.orbit import sample_orbit, save_gif


VIEWS = Path(__file__).resolve().parent / "views"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE)
    parser.add_argument("--object", default="object025", help="Which example object (file name prefix).")
    parser.add_argument("--scheduler", default="ddpm")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--scale", type=int, default=3, help="Enlarge the 64x64 pictures this many times.")
    parser.add_argument("--output_dir", default=str(Path(__file__).resolve().parent / "images"))
    args = parser.parse_args()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    pipeline = ViewFusionPipeline.from_pretrained(args.pipeline)
    pipeline.scheduler = scheduler_from_name(args.scheduler, pipeline.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    views = [PIL.Image.open(VIEWS / f"{args.object}_az{azimuth:03d}.png").convert("RGB") for azimuth in (0, 90, 180)]
    truth = PIL.Image.open(VIEWS / f"{args.object}_az270.png").convert("RGB")
    # The top row without the views' azimuths; with a pipeline that takes poses, a second row with them.
    modes = [None] + ([[0.0, 90.0, 180.0]] if pipeline.unet.config.relative_pose else [])
    rows = []
    for input_azimuths in modes:
        out = pipeline(
            views,
            270.0,
            input_azimuths=input_azimuths,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        )
        row = comparison_row(
            [np.asarray(v) for v in views], out.images[0], np.asarray(truth), out.view_weights[0], num_slots=3
        )
        image = PIL.Image.fromarray(row)
        rows.append(np.asarray(image.resize((image.width * args.scale, image.height * args.scale), PIL.Image.NEAREST)))
    # The column names are drawn at their own size, above the enlarged pictures.
    save_image(labelled_grid(rows, num_slots=3), output_dir / "quickstart.png")

    frames = sample_orbit(pipeline, views[:1], num_inference_steps=args.steps, max_views=6, seed=0)
    save_gif(frames, output_dir / "orbit.gif", frame_ms=150, size=64 * args.scale)
    print(f"Wrote {output_dir / 'quickstart.png'} and {output_dir / 'orbit.gif'}")


if __name__ == "__main__":
    main()
