"""Draw `examples/images/categories.png`: the procedural categories, a few objects each, seen from four azimuths.

One row per category, `--objects` objects per row, each at azimuths 0 / 90 / 180 / 270 (views 0, 6, 12, 18).
Every object's front faces +x, so the first view of each object shows its front and all of a row face alike.

    python examples/make_category_figure.py
    python examples/make_category_figure.py --objects 3 --resolution 64 --output examples/images/categories.png
"""

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw

from viewfusion_diffusers.constants import view_azimuth
from viewfusion_diffusers.data.categories import CATEGORIES
from viewfusion_diffusers.data.render import render_object


VIEWS = (0, 6, 12, 18)


def category_figure(
    categories=CATEGORIES, objects: int = 3, resolution: int = 64, first_seed: int = 0
) -> PIL.Image.Image:
    """The figure as a PIL image: a label column, then `objects` groups of the four views per category.

    Example:
        ```py
        >>> category_figure(["chair", "car"], objects=2, resolution=32).save("two_rows.png")
        ```
    """
    label_width, gap, header = 96, resolution // 4, 16
    width = label_width + objects * (len(VIEWS) * resolution + gap)
    figure = PIL.Image.new("RGB", (width, header + len(categories) * resolution), "white")
    draw = PIL.ImageDraw.Draw(figure)
    for j in range(objects):
        for i, k in enumerate(VIEWS):
            draw.text(
                (label_width + j * (len(VIEWS) * resolution + gap) + i * resolution + 4, 2),
                f"{view_azimuth(k):g}°",
                fill="black",
            )
    for row, category in enumerate(categories):
        top = header + row * resolution
        draw.text((6, top + resolution // 2 - 6), category, fill="black")
        for j in range(objects):
            images, *_ = render_object(category, first_seed + j, resolution)
            strip = np.concatenate([images[k] for k in VIEWS], axis=1)
            figure.paste(PIL.Image.fromarray(strip), (label_width + j * (len(VIEWS) * resolution + gap), top))
    return figure


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=3, help="Objects per category (seeds 0, 1, ...).")
    parser.add_argument("--first_seed", type=int, default=0, help="Seed of the first object of each row.")
    parser.add_argument("--resolution", type=int, default=64, help="Size of each view in pixels.")
    parser.add_argument("--output", default=str(Path(__file__).parent / "images" / "categories.png"))
    args = parser.parse_args(argv)
    figure = category_figure(objects=args.objects, resolution=args.resolution, first_seed=args.first_seed)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.output, optimize=True)
    print(f"Wrote {args.output} ({figure.width}x{figure.height})")


if __name__ == "__main__":
    main()
