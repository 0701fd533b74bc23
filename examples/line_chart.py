"""Line charts drawn with Pillow alone (a dependency already), for the results figures: panels side by side,
each with its axes, ticks, labelled series and a legend.

    from line_chart import Series, Panel, save_line_chart
    save_line_chart([Panel("loss", "samples", "MSE", [Series("base", [0, 1], [0.1, 0.09])])], "curves.png")
"""

import math
from dataclasses import dataclass, field

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from viewfusion_diffusers.file_utils import save_image


COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


@dataclass
class Series:
    """One line: its legend label (`None`: not in the legend), points, and optionally a colour and a dashed style
    (for a reference line).

    Example:
        ```py
        >>> model = Series("ViewFusion", [0, 500, 1000], [0.30, 0.25, 0.21])
        >>> nearest = Series("nearest view", [0, 1000], [0.22, 0.22], dashed=True)  # a reference line
        >>> save_line_chart([Panel("LPIPS on test views", "samples seen", "LPIPS", [model, nearest])], "lpips.png")
        >>> model.color is None  # no colour given: the panel draws series i in COLORS[i]
        True
        ```
    """

    label: str | None
    xs: list
    ys: list
    color: tuple | None = None
    dashed: bool = False


@dataclass
class Panel:
    """One chart: a title, axis labels and its series; `x_log` puts the x axis on a log scale (ticks at 1, 2 and 5
    times the powers of ten), for curves that span decades.

    Example:
        ```py
        >>> panel = Panel("validation loss", "samples seen", "MSE of v", [Series("base", [0, 800], [0.052, 0.050])])
        >>> save_line_chart([panel, panel], "validation.png")  # panels side by side, each 640x420 pixels
        >>> PIL.Image.open("validation.png").size
        (1280, 420)
        ```
    """

    title: str
    x_label: str
    y_label: str
    series: list = field(default_factory=list)
    x_log: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high].

    Example:
        ```py
        >>> nice_ticks(0.0, 1.0)
        [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        ```
    """
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs(s - raw))
    start = math.floor(low / step) * step
    return [start + i * step for i in range(int(math.ceil((high - start) / step)) + 1)]


def short_number(value: float) -> str:
    """A tick label of at most a few characters: 20k, 1.5M.

    Example:
        ```py
        >>> short_number(20000), short_number(1500000), short_number(0.5)
        ('20k', '1.5M', '0.5')
        ```
    """
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks at 1, 2 and 5 times the powers of ten, from the last one at or below `low` to the first at or above
    `high` (both positive).

    Example:
        ```py
        >>> log_ticks(130, 4100)
        [100, 200, 500, 1000, 2000, 5000]
        >>> log_ticks(1000, 1000)  # one value: still an axis
        [1000, 2000]
        ```
    """
    if low <= 0:
        raise ValueError(f"A log axis needs positive values, got {low}.")
    candidates = [
        m * 10**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1) for m in (1, 2, 5)
    ]
    first = max(t for t in candidates if t <= low)
    # Strictly above `first`: an axis needs two ticks even when all its values are equal (the candidates reach
    # 5 times the power of ten at or above `high`, so there is one).
    last = min(t for t in candidates if t >= high and t > first)
    return [t for t in candidates if first <= t <= last]


def draw_panel(panel: Panel, size=(640, 420), scale: int = 2) -> PIL.Image.Image:
    """One panel as an image, `scale` times `size` pixels."""
    width, height = size[0] * scale, size[1] * scale
    image = PIL.Image.new("RGB", (width, height), "white")
    draw = PIL.ImageDraw.Draw(image)
    font, small = PIL.ImageFont.load_default(size=13 * scale), PIL.ImageFont.load_default(size=11 * scale)
    left, right, top, bottom = 70 * scale, 15 * scale, 30 * scale, 50 * scale
    xs = [x for s in panel.series for x in s.xs]
    ys = [y for s in panel.series for y in s.ys]
    # A margin of a twentieth of the span keeps a line at the data's extreme (a target, say) off the frame.
    margin = 0.05 * (max(ys) - min(ys))
    x_ticks = log_ticks(min(xs), max(xs)) if panel.x_log else nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(min(ys) - margin, max(ys) + margin)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    scale_x = math.log10 if panel.x_log else float
    to_px = lambda x, y: (
        left + (scale_x(x) - scale_x(x0)) / (scale_x(x1) - scale_x(x0)) * (width - left - right),
        height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom),
    )
    draw.text((width / 2, 6 * scale), panel.title, fill="black", font=font, anchor="mt")
    for tick in x_ticks:
        px, py = to_px(tick, y0)
        draw.line([(px, top), (px, py)], fill=(230, 230, 230), width=scale)
        draw.text(
            (px, py + 4 * scale),
            short_number(tick) if panel.x_log else f"{tick:g}",
            fill="black",
            font=small,
            anchor="mt",
        )
    for tick in y_ticks:
        px, py = to_px(x0, tick)
        draw.line([(px, py), (width - right, py)], fill=(230, 230, 230), width=scale)
        draw.text((px - 4 * scale, py), f"{tick:.4g}", fill="black", font=small, anchor="rm")
    draw.rectangle([to_px(x0, y1), to_px(x1, y0)], outline="black", width=scale)
    draw.text((width / 2, height - 8 * scale), panel.x_label, fill="black", font=font, anchor="mb")
    label = PIL.Image.new("RGB", (int(draw.textlength(panel.y_label, font=font)) + 4, 18 * scale), "white")
    PIL.ImageDraw.Draw(label).text((2, 0), panel.y_label, fill="black", font=font)
    image.paste(label.rotate(90, expand=True), (4 * scale, int(height / 2 - label.width / 2)))
    in_legend = [(i, s) for i, s in enumerate(panel.series) if s.label is not None]
    legend_size = (
        max((draw.textlength(s.label, font=small) for _, s in in_legend), default=0) + 40 * scale,
        (16 * len(in_legend) + 2) * scale,
    )
    legend_box = legend_corner(panel, to_px, legend_size, (left, top, width - right, height - bottom), 5 * scale)
    for i, series in enumerate(panel.series):
        color = series.color or COLORS[i % len(COLORS)]
        points = [to_px(x, y) for x, y in zip(series.xs, series.ys)]
        if series.dashed:
            for a, b in zip(points, points[1:]):
                for k in range(0, 20, 2):
                    t0, t1 = k / 20, (k + 1) / 20
                    draw.line(
                        [
                            (a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                            (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1),
                        ],
                        fill=color,
                        width=2 * scale,
                    )
        elif len(points) > 1:
            draw.line(points, fill=color, width=2 * scale, joint="curve")
        for px, py in points if not series.dashed else []:
            draw.ellipse([px - 3 * scale, py - 3 * scale, px + 3 * scale, py + 3 * scale], fill=color)
    draw.rectangle(legend_box, fill="white", outline=(200, 200, 200), width=scale)
    for row, (i, series) in enumerate(in_legend):
        color = series.color or COLORS[i % len(COLORS)]
        legend_x, legend_y = legend_box[0], legend_box[1] + (9 + 16 * row) * scale
        draw.line([(legend_x + 5 * scale, legend_y), (legend_x + 25 * scale, legend_y)], fill=color, width=3 * scale)
        draw.text((legend_x + 30 * scale, legend_y), series.label, fill="black", font=small, anchor="lm")
    return image


def legend_corner(panel: Panel, to_px, size, plot_box, inset: float) -> list[float]:
    """The legend's box in the corner of the plot that covers the fewest points of the panel's lines (sampled
    along each segment, so a line crossing a corner counts as well as its markers); top left on a tie."""
    left, top, right, bottom = plot_box
    width, height = size
    corners = [
        (left + inset, top + inset),
        (right - inset - width, top + inset),
        (right - inset - width, bottom - inset - height),
        (left + inset, bottom - inset - height),
    ]
    points = []
    for series in panel.series:
        pixels = [to_px(x, y) for x, y in zip(series.xs, series.ys)]
        points += pixels[:1] + [
            (a[0] + (b[0] - a[0]) * k / 20, a[1] + (b[1] - a[1]) * k / 20)
            for a, b in zip(pixels, pixels[1:])
            for k in range(1, 21)
        ]

    def covered(corner):
        x, y = corner
        return sum(x - inset <= px <= x + width + inset and y - inset <= py <= y + height + inset for px, py in points)

    x, y = min(corners, key=covered)
    return [x, y, x + width, y + height]


def save_line_chart(panels: list[Panel], path, size=(640, 420), columns: int | None = None) -> None:
    """The panels side by side, `columns` to a row (default: all in one row), written to `path` (PNG), atomically.

    Example:
        ```py
        >>> save_line_chart([Panel("loss", "step", "MSE", [Series("run", [0, 1, 2], [3.0, 2.0, 1.5])])], "loss.png")
        ```
    """
    images = [draw_panel(panel, size) for panel in panels]
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    width, height = images[0].size
    figure = PIL.Image.new("RGB", (width * min(columns, len(images)), height * rows), "white")
    for i, image in enumerate(images):
        figure.paste(image, (width * (i % columns), height * (i // columns)))
    save_image(figure.resize((figure.width // 2, figure.height // 2), PIL.Image.LANCZOS), path)
