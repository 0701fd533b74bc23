"""Procedural objects of NMR's categories, built from primitives, every one facing the same way.

NMR (ShapeNet rendered at 24 azimuths) has a property a pose-free model leans on: every object of a category is
aligned, so "the front" is a fixed azimuth and a single view tells where the camera stands. The objects here
keep that property. [`make_object`] builds one seeded object of a category from boxes, cylinders, cones,
spheres, extrusions and lathed or lofted profiles (the shapes of [`viewfusion_diffusers.data.geometry`]), with
varied proportions, part counts and styles, and one colour scheme per object (each part coloured).

Conventions (world units are metres, roughly):

- z is up and the object stands on z = 0;
- **the front faces +x**: seen from azimuth 0 (view 0 of `viewfusion-render`, whose camera sits on the +x axis)
  one looks at the front. Left-right is along y. What "front" means per category: an airplane's nose, a car's
  hood and headlights, a watercraft's bow and a rifle's muzzle point to +x; a chair's, bench's or sofa's seat
  opens to +x (the backrest is at -x); a cabinet's doors and drawers, a display's or telephone's screen and a
  loudspeaker's drivers face +x; an articulated lamp reaches towards +x; a table's long side faces +x.

Example:
    ```py
    >>> from viewfusion_diffusers.data.categories import make_object
    >>> parts = make_object("chair", seed=3)
    >>> [part.name for part in parts][:3]
    ['seat', 'back', 'back']
    ```
"""

import math
import zlib

import numpy as np

from .geometry import (
    Part,
    box_mesh,
    cylinder_mesh,
    ellipsoid_mesh,
    extrude_mesh,
    lathe_mesh,
    loft_mesh,
    rotate_z,
    rounded_rectangle,
)


# ----------------------------------------------------------------------------------------------------------------
# Colours


def _jitter(rng, color, amount=0.04) -> tuple:
    rgb = np.clip(np.asarray(color)[:3] + rng.uniform(-amount, amount, size=3), 0.02, 0.98)
    return (*(round(float(c), 3) for c in rgb), 1.0)


def _pick(rng, palette, amount=0.04) -> tuple:
    return _jitter(rng, palette[int(rng.integers(len(palette)))], amount)


WOOD = [(0.55, 0.36, 0.2), (0.72, 0.53, 0.34), (0.4, 0.25, 0.14), (0.83, 0.68, 0.47), (0.3, 0.18, 0.1)]
METAL = [(0.22, 0.22, 0.24), (0.6, 0.6, 0.63), (0.12, 0.12, 0.12), (0.78, 0.78, 0.8)]
FABRIC = [
    (0.7, 0.15, 0.15),
    (0.2, 0.33, 0.6),
    (0.3, 0.5, 0.3),
    (0.85, 0.8, 0.7),
    (0.5, 0.5, 0.52),
    (0.9, 0.6, 0.2),
    (0.38, 0.26, 0.48),
    (0.15, 0.45, 0.5),
    (0.25, 0.25, 0.28),
]
PAINT = [
    (0.75, 0.08, 0.08),
    (0.1, 0.25, 0.65),
    (0.92, 0.92, 0.9),
    (0.65, 0.66, 0.68),
    (0.1, 0.1, 0.11),
    (0.95, 0.75, 0.1),
    (0.15, 0.45, 0.2),
    (0.9, 0.4, 0.1),
    (0.4, 0.1, 0.35),
]
PLASTIC = [(0.08, 0.08, 0.09), (0.9, 0.9, 0.9), (0.6, 0.6, 0.62), (0.3, 0.3, 0.32)]
GLASS = (0.12, 0.16, 0.22)
SCREEN = (0.05, 0.08, 0.14)
RUBBER = (0.06, 0.06, 0.06)


class _Parts:
    def __init__(self):
        self.parts: list[Part] = []

    def add(self, name: str, mesh, color) -> None:
        vertices, faces = mesh
        rgba = (*color[:3], 1.0)  # opaque: pybullet's renderer draws no transparency
        self.parts.append(
            Part(
                np.ascontiguousarray(vertices, dtype=np.float64),
                np.ascontiguousarray(faces, dtype=np.int64),
                tuple(float(c) for c in rgba),
                name,
            )
        )


def _u(rng, low, high) -> float:
    return float(rng.uniform(low, high))


# ----------------------------------------------------------------------------------------------------------------
# Categories. Every builder draws in the convention of the module docstring: z up, front towards +x.


def _airplane(rng, out: _Parts):
    length = _u(rng, 3.0, 6.0)
    radius = length * _u(rng, 0.045, 0.075)
    liveries = [(0.93, 0.93, 0.93), (0.75, 0.76, 0.78), (0.85, 0.87, 0.9), (0.2, 0.3, 0.55), (0.35, 0.4, 0.3)]
    body, accent = _pick(rng, liveries), _pick(rng, PAINT)
    wing_color = body if rng.random() < 0.6 else _pick(rng, METAL[1:2] + [(0.85, 0.85, 0.85)])
    nose = length / 2
    profile = [
        (0.0, 0.0),
        (0.5 * radius, 0.025 * length),
        (0.85 * radius, 0.07 * length),
        (radius, 0.16 * length),
        (radius, 0.62 * length),
        (0.6 * radius, 0.86 * length),
        (0.2 * radius, length),
    ]
    out.add("fuselage", lathe_mesh(profile, (nose, 0, 0), (-1, 0, 0), 20), body)
    # Wings: a swept, tapered planform in (x, y), drawn across both sides, extruded in z.
    half_span = length * _u(rng, 0.4, 0.65)
    root_chord = length * _u(rng, 0.15, 0.25)
    tip_chord = root_chord * _u(rng, 0.25, 0.6)
    sweep = half_span * math.tan(math.radians(_u(rng, 5, 38)))
    leading = nose - length * _u(rng, 0.3, 0.42)
    height = radius * float(rng.choice([-0.6, 0.0, 0.65]))
    thickness = radius * 0.25

    def planform(leading, root_chord, tip_chord, sweep, half_span):
        return [
            (leading, 0.0),
            (leading - sweep, -half_span),
            (leading - sweep - tip_chord, -half_span),
            (leading - root_chord, 0.0),
            (leading - sweep - tip_chord, half_span),
            (leading - sweep, half_span),
        ]

    out.add(
        "wing",
        extrude_mesh(
            planform(leading, root_chord, tip_chord, sweep, half_span),
            height - thickness / 2,
            height + thickness / 2,
            axes=(0, 1),
        ),
        wing_color,
    )
    # Vertical fin at the tail, swept back.
    tail = -length / 2 + 0.02 * length
    fin_chord = length * _u(rng, 0.12, 0.2)
    fin_height = length * _u(rng, 0.1, 0.17)
    fin_sweep = fin_height * math.tan(math.radians(_u(rng, 25, 50)))
    fin = [
        (tail + fin_chord, 0.2 * radius),
        (tail, 0.2 * radius),
        (tail - 0.3 * fin_chord + fin_sweep * 0.3, fin_height),
        (tail + 0.4 * fin_chord, fin_height),
    ]
    fin = [(x - fin_sweep * 0.3 * (z / fin_height) if k >= 2 else x, z) for k, (x, z) in enumerate(fin)]
    out.add("fin", extrude_mesh(fin, -radius * 0.1, radius * 0.1, axes=(0, 2)), accent)
    # Horizontal tail: at the fuselage, or on top of the fin (a T-tail).
    t_tail = rng.random() < 0.3
    tail_span = half_span * _u(rng, 0.3, 0.42)
    tail_chord = fin_chord * _u(rng, 0.6, 0.85)
    tail_z = fin_height * 0.95 if t_tail else radius * 0.2
    tail_leading = (tail + 0.4 * fin_chord - fin_sweep * 0.3) if t_tail else tail + tail_chord * 1.1
    out.add(
        "tailplane",
        extrude_mesh(
            planform(tail_leading, tail_chord, tail_chord * 0.5, tail_span * 0.5, tail_span),
            tail_z - thickness / 3,
            tail_z + thickness / 3,
            axes=(0, 1),
        ),
        accent if t_tail else wing_color,
    )
    # Engines: under the wings, or on the rear fuselage.
    engines = int(rng.choice([0, 2, 2, 4, -2]))  # -2: two engines beside the rear fuselage
    engine_radius = radius * _u(rng, 0.35, 0.5)
    engine_length = length * _u(rng, 0.09, 0.13)
    engine_color = _pick(rng, METAL[:2])
    if engines > 0:
        stations = [0.35] if engines == 2 else [0.3, 0.62]
        for station in stations:
            for side in (-1, 1):
                y = side * station * half_span
                front = leading - sweep * station + engine_length * 0.55
                z = height - thickness / 2 - engine_radius * 1.1
                nacelle = cylinder_mesh(
                    (front, y, z), (front - engine_length, y, z), engine_radius, engine_radius * 0.8, 14
                )
                out.add("engine", nacelle, engine_color)
    elif engines < 0:
        for side in (-1, 1):
            x = -length * 0.28
            y, z = side * (radius + engine_radius * 1.2), radius * 0.35
            out.add(
                "engine",
                cylinder_mesh((x, y, z), (x - engine_length, y, z), engine_radius, engine_radius * 0.8, 14),
                engine_color,
            )
    # Cockpit windows: a dark band near the nose.
    window = nose - 0.09 * length
    out.add(
        "cockpit",
        ellipsoid_mesh((window, 0, 0.55 * radius), (0.05 * length, 0.7 * radius, 0.35 * radius), 12, 6),
        GLASS,
    )


def _car(rng, out: _Parts):
    style = str(rng.choice(["sedan", "hatchback", "suv", "pickup"]))
    length = _u(rng, 3.8, 5.0) if style != "hatchback" else _u(rng, 3.5, 4.2)
    width = length * _u(rng, 0.38, 0.45)
    tall = style in ("suv", "pickup")
    wheel = _u(rng, 0.3, 0.35) + (0.05 if tall else 0.0)
    clearance = _u(rng, 0.12, 0.18) + (0.12 if tall else 0.0)
    belt = clearance + _u(rng, 0.5, 0.62) + (0.12 if tall else 0.0)
    roof = belt + _u(rng, 0.38, 0.52)
    paint, trim = _pick(rng, PAINT), _pick(rng, PLASTIC[:1] + METAL[:1])
    front, rear = length / 2, -length / 2
    hood = length * (_u(rng, 0.24, 0.32) if style in ("sedan", "pickup") else _u(rng, 0.16, 0.24))
    windshield = front - hood
    roof_front = windshield - _u(rng, 0.35, 0.6) * (roof - belt) / 0.45
    if style == "sedan":
        roof_rear = roof_front - length * _u(rng, 0.22, 0.3)
        rear_window = roof_rear - _u(rng, 0.35, 0.55)
    elif style == "hatchback":
        roof_rear = rear + _u(rng, 0.2, 0.45)
        rear_window = rear + 0.05
    elif style == "suv":
        roof_rear = rear + _u(rng, 0.08, 0.18)
        rear_window = rear + 0.03
    else:
        roof_rear = roof_front - _u(rng, 0.8, 1.1)
        rear_window = roof_rear - 0.08
    body = [
        (rear, clearance),
        (front, clearance),
        (front, belt - 0.14),
        (front - 0.12, belt - 0.02),
        (windshield, belt + 0.04),
        (rear + 0.1, belt + 0.01),
        (rear, belt - 0.08),
    ]
    out.add("body", extrude_mesh(body, -width / 2, width / 2, axes=(0, 2)), paint)
    cabin = [(windshield, belt + 0.02), (roof_front, roof), (roof_rear, roof), (rear_window, belt + 0.02)]
    out.add("windows", extrude_mesh(cabin, -0.43 * width, 0.43 * width, axes=(0, 2)), GLASS)
    roof_slab = [
        (roof_front + 0.04, roof - 0.02),
        (roof_rear - 0.02, roof - 0.02),
        (roof_rear - 0.02, roof + 0.035),
        (roof_front + 0.02, roof + 0.035),
    ]
    out.add("roof", extrude_mesh(roof_slab, -0.44 * width, 0.44 * width, axes=(0, 2)), paint)
    if style == "pickup":
        bed_length = rear_window - 0.05 - rear - 0.15
        out.add(
            "bed",
            box_mesh(((rear_window - 0.05 + rear + 0.1) / 2, 0, belt + 0.005), (bed_length, width * 0.85, 0.03)),
            trim,
        )
    front_axle = front - _u(rng, 0.65, 0.95)
    rear_axle = rear + _u(rng, 0.7, 1.0)
    hub = _pick(rng, METAL[1:2] + METAL[3:4] + METAL[:1])
    for x in (front_axle, rear_axle):
        for side in (-1, 1):
            inner, outer = side * (width / 2 - 0.2), side * (width / 2 + 0.02)
            out.add("wheel", cylinder_mesh((x, inner, wheel), (x, outer, wheel), wheel, segments=18), RUBBER)
            out.add(
                "hub",
                cylinder_mesh((x, outer, wheel), (x, outer + side * 0.015, wheel), wheel * 0.55, segments=12),
                hub,
            )
    lamp_z = belt - _u(rng, 0.13, 0.2)
    for side in (-1, 1):
        y = side * (width / 2 - _u(rng, 0.16, 0.22))
        out.add("headlight", box_mesh((front + 0.01, y, lamp_z), (0.04, 0.26, 0.09)), (0.98, 0.95, 0.75, 1.0))
        out.add("taillight", box_mesh((rear - 0.01, y, lamp_z + 0.04), (0.04, 0.24, 0.1)), (0.85, 0.05, 0.05, 1.0))
    out.add("grille", box_mesh((front + 0.01, 0, lamp_z - 0.06), (0.03, width * 0.35, 0.12)), trim)
    out.add("bumper", box_mesh((front + 0.02, 0, clearance + 0.08), (0.06, width * 0.98, 0.12)), trim)


def _chair_legs(rng, out, depth, width, seat_bottom, color):
    if rng.random() < 0.3:  # an office chair: a column on a five-arm base with casters
        out.add("leg", cylinder_mesh((0, 0, 0.07), (0, 0, seat_bottom), 0.03, segments=12), color)
        arm = _u(rng, 0.26, 0.33)
        offset = _u(rng, 0, 72)
        for k in range(5):
            out.add("leg", rotate_z(box_mesh((arm / 2, 0, 0.06), (arm, 0.045, 0.035)), offset + 72 * k), color)
            angle = math.radians(offset + 72 * k)
            out.add(
                "caster",
                ellipsoid_mesh((arm * math.cos(angle), arm * math.sin(angle), 0.025), (0.025,) * 3, 8, 4),
                RUBBER,
            )
        return
    round_legs = rng.random() < 0.4
    size = _u(rng, 0.03, 0.05)
    inset = _u(rng, 0.0, 0.04)
    for x in (depth / 2 - size / 2 - inset, -depth / 2 + size / 2 + inset):
        for y in (width / 2 - size / 2 - inset, -width / 2 + size / 2 + inset):
            if round_legs:
                out.add("leg", cylinder_mesh((x, y, 0), (x, y, seat_bottom), size / 2, segments=10), color)
            else:
                out.add("leg", box_mesh((x, y, seat_bottom / 2), (size, size, seat_bottom)), color)


def _backrest(rng, out, x_back, width, bottom, height, thickness, recline, color, name="back"):
    """A backrest standing at `x_back` (its rear face), leaning back by `recline` degrees."""
    lean = height * math.tan(math.radians(recline))

    def slab(z0, z1, y0, y1):
        shift0, shift1 = lean * (z0 - bottom) / height, lean * (z1 - bottom) / height
        section = [
            (x_back - shift0, z0),
            (x_back + thickness - shift0, z0),
            (x_back + thickness - shift1, z1),
            (x_back - shift1, z1),
        ]
        out.add(name, extrude_mesh(section, y0, y1, axes=(0, 2)), color)

    style = str(rng.choice(["panel", "slats", "rails"]))
    if style == "panel":
        slab(bottom, bottom + height, -width / 2, width / 2)
        return
    post = 0.04
    for side in (-1, 1):
        slab(
            bottom,
            bottom + height,
            side * width / 2 - (post if side > 0 else 0),
            side * width / 2 + (post if side < 0 else 0),
        )
    if style == "slats":
        slab(bottom + 0.8 * height, bottom + height, -width / 2, width / 2)
        count = int(rng.integers(2, 6))
        for k in range(count):
            y = -width / 2 + post + (width - 2 * post) * (k + 0.5) / count
            slab(bottom, bottom + 0.8 * height, y - 0.018, y + 0.018)
    else:
        count = int(rng.integers(2, 4))
        for k in range(count):
            z = bottom + height * (1 - 0.28 * k)
            slab(z - 0.07, z, -width / 2, width / 2)


def _chair(rng, out: _Parts):
    width, depth = _u(rng, 0.42, 0.56), _u(rng, 0.4, 0.52)
    seat, thickness = _u(rng, 0.42, 0.5), _u(rng, 0.04, 0.09)
    frame = _pick(rng, WOOD + METAL)
    cushion = _jitter(rng, frame, 0.12) if rng.random() < 0.35 else _pick(rng, FABRIC)  # all wood, or upholstered
    out.add("seat", box_mesh((0, 0, seat - thickness / 2), (depth, width, thickness)), cushion)
    _backrest(
        rng,
        out,
        -depth / 2,
        width,
        seat,
        _u(rng, 0.35, 0.6),
        _u(rng, 0.03, 0.06),
        _u(rng, 0, 16),
        cushion if rng.random() < 0.5 else frame,
    )
    _chair_legs(rng, out, depth, width, seat - thickness, frame)
    if rng.random() < 0.35:
        arm_z = seat + _u(rng, 0.18, 0.25)
        for side in (-1, 1):
            y = side * (width / 2 + 0.025)
            out.add("arm", box_mesh((0, y, arm_z), (depth * 0.85, 0.05, 0.035)), frame)
            out.add("arm", box_mesh((depth * 0.3, y, (seat + arm_z) / 2), (0.035, 0.035, arm_z - seat)), frame)


def _sofa(rng, out: _Parts):
    width, depth = _u(rng, 1.3, 2.4), _u(rng, 0.8, 1.0)
    legs, seat = _u(rng, 0.04, 0.14), _u(rng, 0.4, 0.48)
    back_top, back_depth = _u(rng, 0.72, 0.95), _u(rng, 0.14, 0.24)
    fabric, leg_color = _pick(rng, FABRIC), _pick(rng, WOOD + METAL[:1])
    cushion_color = fabric if rng.random() < 0.6 else _pick(rng, FABRIC)
    arm_width = _u(rng, 0.1, 0.24) if rng.random() < 0.85 else 0.0
    arm_top = _u(rng, 0.55, 0.7)
    cushion = _u(rng, 0.1, 0.16)
    base_top = seat - cushion
    out.add("base", box_mesh((0, 0, (legs + base_top) / 2), (depth, width, base_top - legs)), fabric)
    out.add(
        "back",
        box_mesh(
            (-depth / 2 + back_depth / 2, 0, (base_top + back_top) / 2), (back_depth, width, back_top - base_top)
        ),
        fabric,
    )
    inner = width / 2 - arm_width
    if arm_width > 0:
        rounded = rng.random() < 0.4
        for side in (-1, 1):
            y = side * (width / 2 - arm_width / 2)
            out.add("arm", box_mesh((0, y, (legs + arm_top) / 2), (depth, arm_width, arm_top - legs)), fabric)
            if rounded:
                out.add(
                    "arm",
                    cylinder_mesh(
                        (depth / 2, y, arm_top), (-depth / 2, y, arm_top), arm_width / 2 * 1.05, segments=12
                    ),
                    fabric,
                )
    count = int(rng.integers(1, 4))
    gap = 0.015
    for k in range(count):
        y0 = -inner + 2 * inner * k / count + gap
        y1 = -inner + 2 * inner * (k + 1) / count - gap
        size = (depth - back_depth - 0.02, y1 - y0, cushion)
        out.add(
            "cushion", box_mesh(((back_depth + 0.02) / 2, (y0 + y1) / 2, base_top + cushion / 2), size), cushion_color
        )
    if rng.random() < 0.5:  # back cushions leaning on the back
        for k in range(count):
            y0 = -inner + 2 * inner * k / count + gap
            y1 = -inner + 2 * inner * (k + 1) / count - gap
            x = -depth / 2 + back_depth + 0.06
            size = (0.12, y1 - y0, back_top - seat - 0.04)
            out.add("back cushion", box_mesh((x, (y0 + y1) / 2, (seat + back_top) / 2), size), cushion_color)
    for x in (depth / 2 - 0.06, -depth / 2 + 0.06):
        for y in (width / 2 - 0.06, -width / 2 + 0.06):
            out.add("leg", cylinder_mesh((x, y, 0), (x, y, legs), 0.025, segments=10), leg_color)


def _bench(rng, out: _Parts):
    length, depth = _u(rng, 1.0, 1.8), _u(rng, 0.32, 0.46)
    seat, thickness = _u(rng, 0.4, 0.48), _u(rng, 0.04, 0.07)
    wood, metal = _pick(rng, WOOD), _pick(rng, METAL + WOOD)
    if rng.random() < 0.5:
        out.add("seat", box_mesh((0, 0, seat - thickness / 2), (depth, length, thickness)), wood)
    else:
        count = int(rng.integers(3, 6))
        slat = depth / count
        for k in range(count):
            out.add(
                "seat",
                box_mesh((-depth / 2 + slat * (k + 0.5), 0, seat - thickness / 2), (slat * 0.8, length, thickness)),
                wood,
            )
    ends = length / 2 - _u(rng, 0.05, 0.2)
    if rng.random() < 0.5:  # slab ends
        for side in (-1, 1):
            out.add(
                "leg", box_mesh((0, side * ends, (seat - thickness) / 2), (depth * 0.9, 0.05, seat - thickness)), metal
            )
    else:
        for side in (-1, 1):
            for x in (depth / 2 - 0.04, -depth / 2 + 0.04):
                out.add(
                    "leg", box_mesh((x, side * ends, (seat - thickness) / 2), (0.045, 0.045, seat - thickness)), metal
                )
            out.add("leg", box_mesh((0, side * ends, 0.08), (depth - 0.08, 0.03, 0.03)), metal)
    if rng.random() < 0.55:
        back = _u(rng, 0.3, 0.45)
        for side in (-1, 1):
            out.add(
                "back",
                extrude_mesh(
                    [
                        (-depth / 2, seat - 0.02),
                        (-depth / 2 + 0.05, seat - 0.02),
                        (-depth / 2 - 0.03, seat + back),
                        (-depth / 2 - 0.08, seat + back),
                    ],
                    side * ends - 0.025,
                    side * ends + 0.025,
                    axes=(0, 2),
                ),
                metal,
            )
        for k in range(int(rng.integers(2, 4))):
            z = seat + back * (1 - 0.3 * k) - 0.04
            x = -depth / 2 - 0.065 * (z - seat) / back + 0.01
            out.add("back", box_mesh((x, 0, z), (0.03, length * 0.98, 0.08)), wood)
        if rng.random() < 0.5:
            for side in (-1, 1):
                out.add("arm", box_mesh((0, side * ends, seat + 0.2), (depth, 0.05, 0.035)), metal)


def _table(rng, out: _Parts):
    low = rng.random() < 0.25  # a coffee table
    height = _u(rng, 0.35, 0.5) if low else _u(rng, 0.7, 0.78)
    thickness = _u(rng, 0.03, 0.06)
    top_color = _pick(rng, WOOD + [(0.92, 0.92, 0.9), (0.1, 0.1, 0.1)])
    leg_color = _jitter(rng, top_color, 0.12) if rng.random() < 0.4 else _pick(rng, METAL + WOOD)
    round_top = rng.random() < 0.25
    if round_top:
        radius = _u(rng, 0.35, 0.6)
        width = depth = 2 * radius
        out.add("top", cylinder_mesh((0, 0, height - thickness), (0, 0, height), radius, segments=28), top_color)
    else:
        width = _u(rng, 0.8, 1.9)
        depth = width * _u(rng, 0.45, 0.95)
        out.add("top", box_mesh((0, 0, height - thickness / 2), (depth, width, thickness)), top_color)
    under = height - thickness
    style = str(rng.choice(["four", "pedestal", "trestle"] if not round_top else ["four", "pedestal"]))
    if style == "pedestal":
        out.add("leg", cylinder_mesh((0, 0, 0.03), (0, 0, under), _u(rng, 0.03, 0.07), segments=14), leg_color)
        if rng.random() < 0.5:
            out.add(
                "foot",
                cylinder_mesh((0, 0, 0), (0, 0, 0.03), min(width, depth) * _u(rng, 0.25, 0.4), segments=24),
                leg_color,
            )
        else:
            reach = min(width, depth) * 0.38
            for angle in (0, 90):
                out.add("foot", rotate_z(box_mesh((0, 0, 0.025), (2 * reach, 0.06, 0.05)), angle), leg_color)
    elif style == "trestle":
        for side in (-1, 1):
            y = side * (width / 2 - 0.12)
            out.add("leg", box_mesh((0, y, under / 2), (0.06, 0.06, under)), leg_color)
            out.add("foot", box_mesh((0, y, 0.025), (depth * 0.8, 0.07, 0.05)), leg_color)
        out.add("leg", box_mesh((0, 0, under * 0.35), (0.04, width - 0.24, 0.06)), leg_color)
    else:
        size = _u(rng, 0.035, 0.07)
        inset = _u(rng, 0.02, 0.1)
        corner = 0.7071 if round_top else 1.0
        for x in (-1, 1):
            for y in (-1, 1):
                px, py = x * (depth / 2 * corner - inset - size / 2), y * (width / 2 * corner - inset - size / 2)
                if rng.random() < 0.5 and not round_top:
                    out.add("leg", box_mesh((px, py, under / 2), (size, size, under)), leg_color)
                else:
                    out.add("leg", cylinder_mesh((px, py, 0), (px, py, under), size / 2, segments=10), leg_color)
        if not round_top and rng.random() < 0.5:
            apron = 0.08
            out.add(
                "apron",
                box_mesh((0, 0, under - apron / 2), (depth - 2 * inset - size, width - 2 * inset - size, apron)),
                leg_color,
            )


def _cabinet(rng, out: _Parts):
    width, depth, height = _u(rng, 0.5, 1.3), _u(rng, 0.35, 0.6), _u(rng, 0.6, 1.9)
    body = _pick(rng, WOOD + [(0.92, 0.92, 0.9), (0.3, 0.32, 0.35)])
    front = body if rng.random() < 0.5 else _pick(rng, WOOD + FABRIC[3:5] + [(0.92, 0.92, 0.9)])
    handle_color = _pick(rng, METAL)
    base = _u(rng, 0.04, 0.12)
    out.add("body", box_mesh((0, 0, (base + height) / 2), (depth, width, height - base)), body)
    if rng.random() < 0.5:
        out.add(
            "plinth",
            box_mesh((-0.02, 0, base / 2), (depth - 0.04, width - 0.04, base)),
            handle_color if rng.random() < 0.3 else body,
        )
    else:
        for x in (depth / 2 - 0.04, -depth / 2 + 0.04):
            for y in (width / 2 - 0.04, -width / 2 + 0.04):
                out.add("leg", cylinder_mesh((x, y, 0), (x, y, base), 0.02, segments=8), handle_color)
    if rng.random() < 0.5:
        out.add("top", box_mesh((0.01, 0, height + 0.015), (depth + 0.04, width + 0.04, 0.03)), body)
    gap, margin = 0.012, 0.025
    z0, z1 = base + margin, height - margin
    style = str(rng.choice(["doors", "drawers", "mixed"]))
    split = z1 if style == "doors" else z0 if style == "drawers" else z0 + (z1 - z0) * _u(rng, 0.45, 0.7)
    knobs = rng.random() < 0.4
    x_front = depth / 2

    def panel(y0, y1, za, zb, handle_at):
        out.add(
            "door",
            box_mesh((x_front + 0.008, (y0 + y1) / 2, (za + zb) / 2), (0.016, y1 - y0 - gap, zb - za - gap)),
            front,
        )
        hy, hz, vertical = handle_at
        if knobs:
            out.add("handle", ellipsoid_mesh((x_front + 0.03, hy, hz), (0.018, 0.018, 0.018), 8, 4), handle_color)
        else:
            size = (0.02, 0.015, 0.12) if vertical else (0.02, 0.12, 0.015)
            out.add("handle", box_mesh((x_front + 0.03, hy, hz), size), handle_color)

    if split > z0:  # doors below `split`
        columns = 1 if width < 0.7 and rng.random() < 0.6 else 2
        for c in range(columns):
            y0 = -width / 2 + margin + (width - 2 * margin) * c / columns
            y1 = -width / 2 + margin + (width - 2 * margin) * (c + 1) / columns
            edge = y1 - 0.05 if (columns == 1 or c == 0) else y0 + 0.05
            panel(y0, y1, z0, split, (edge, min(split - 0.1, z0 + 0.9), True))
    if split < z1:  # drawers above `split`
        rows = int(rng.integers(1, 5 if style == "drawers" else 3))
        for r in range(rows):
            za = split + (z1 - split) * r / rows
            zb = split + (z1 - split) * (r + 1) / rows
            panel(-width / 2 + margin, width / 2 - margin, za, zb, (0.0, (za + zb) / 2, False))


def _display(rng, out: _Parts):
    crt = rng.random() < 0.15
    width = _u(rng, 0.35, 0.5) if crt else _u(rng, 0.5, 0.9)
    aspect = _u(rng, 1.2, 1.4) if crt else _u(rng, 1.45, 1.9)
    height = width / aspect
    thickness = _u(rng, 0.02, 0.05)
    bezel = _u(rng, 0.008, 0.04) + (0.03 if crt else 0.0)
    case = _pick(rng, PLASTIC)
    stand_color = case if rng.random() < 0.6 else _pick(rng, METAL)
    bottom = _u(rng, 0.08, 0.22)
    centre_z = bottom + height / 2
    out.add("bezel", box_mesh((0, 0, centre_z), (thickness, width, height)), case)
    out.add(
        "screen",
        box_mesh((thickness / 2 + 0.003, 0, centre_z), (0.006, width - 2 * bezel, height - 2 * bezel)),
        SCREEN,
    )
    if crt:
        back = [
            np.array(
                [
                    [x, -w / 2, centre_z - h / 2],
                    [x, w / 2, centre_z - h / 2],
                    [x, w / 2, centre_z + h / 2],
                    [x, -w / 2, centre_z + h / 2],
                ]
            )
            for x, w, h in (
                (-thickness / 2, width * 0.92, height * 0.92),
                (-thickness / 2 - width * 0.7, width * 0.5, height * 0.5),
            )
        ]
        out.add("back", loft_mesh(back), case)
        out.add("foot", box_mesh((-width * 0.3, 0, bottom / 2), (width * 0.6, width * 0.5, bottom)), stand_color)
        return
    if rng.random() < 0.6:
        out.add("back", box_mesh((-thickness / 2 - 0.015, 0, centre_z), (0.03, width * 0.5, height * 0.5)), case)
    neck_x = -thickness / 2 - 0.03 - 0.02
    style = str(rng.choice(["neck", "neck", "legs"]))
    if style == "neck":
        out.add(
            "neck",
            box_mesh((neck_x, 0, (0.02 + centre_z) / 2), (0.03, _u(rng, 0.04, 0.12), centre_z - 0.02)),
            stand_color,
        )
        if rng.random() < 0.5:
            out.add(
                "foot",
                box_mesh((neck_x + 0.02, 0, 0.01), (_u(rng, 0.16, 0.24), _u(rng, 0.2, 0.35), 0.02)),
                stand_color,
            )
        else:
            out.add(
                "foot",
                cylinder_mesh((neck_x + 0.02, 0, 0), (neck_x + 0.02, 0, 0.02), _u(rng, 0.1, 0.14), segments=24),
                stand_color,
            )
    else:
        for side in (-1, 1):
            y = side * width * _u(rng, 0.3, 0.42)
            out.add("neck", box_mesh((-0.01, y, (bottom + 0.01) / 2), (0.02, 0.03, bottom + 0.01)), stand_color)
            out.add("foot", box_mesh((0.0, y, 0.01), (0.16, 0.04, 0.02)), stand_color)


def _lamp(rng, out: _Parts):
    style = str(rng.choice(["table", "desk", "desk", "floor"]))
    metal, shade_color = (
        _pick(rng, METAL + [(0.75, 0.6, 0.3)]),
        _pick(rng, FABRIC + [(0.95, 0.93, 0.85), (0.95, 0.93, 0.85)]),
    )
    bulb = (1.0, 0.95, 0.7, 1.0)
    if style == "desk":
        base_r = _u(rng, 0.07, 0.11)
        out.add("base", cylinder_mesh((-0.05, 0, 0), (-0.05, 0, 0.025), base_r, segments=20), metal)
        elbow = (-_u(rng, 0.05, 0.15), 0, _u(rng, 0.3, 0.45))
        wrist = (_u(rng, 0.15, 0.3), 0, elbow[2] + _u(rng, -0.05, 0.12))
        out.add("arm", cylinder_mesh((-0.05, 0, 0.025), elbow, 0.012, segments=8), metal)
        out.add("arm", cylinder_mesh(elbow, wrist, 0.012, segments=8), metal)
        out.add("joint", ellipsoid_mesh(elbow, (0.022,) * 3, 10, 5), metal)
        down = math.radians(_u(rng, 30, 70))
        direction = np.array([math.cos(down), 0.0, -math.sin(down)])
        size = _u(rng, 0.1, 0.16)
        profile = [
            (0.015, 0.0),
            (size * 0.45, size * 0.3),
            (size * 0.5, size),
            (size * 0.46, size),
            (size * 0.4, size * 0.32),
            (0.005, 0.02),
        ]
        out.add("head", lathe_mesh(profile, wrist, direction, 18, closed_loop=True), shade_color)
        out.add("bulb", ellipsoid_mesh(np.asarray(wrist) + direction * size * 0.6, (size * 0.2,) * 3, 8, 4), bulb)
        return
    floor = style == "floor"
    stem_top = _u(rng, 1.3, 1.8) if floor else _u(rng, 0.3, 0.5)
    if floor or rng.random() < 0.5:
        out.add("base", cylinder_mesh((0, 0, 0), (0, 0, 0.03), _u(rng, 0.1, 0.18), segments=20), metal)
        out.add("stem", cylinder_mesh((0, 0, 0.03), (0, 0, stem_top), _u(rng, 0.01, 0.02), segments=10), metal)
    else:  # a vase-like body
        body_r = _u(rng, 0.07, 0.13)
        body_h = stem_top * _u(rng, 0.5, 0.8)
        profile = [
            (0.0, 0.0),
            (body_r * 0.7, 0.0),
            (body_r, body_h * 0.35),
            (body_r * _u(rng, 0.4, 0.9), body_h * 0.8),
            (0.02, body_h),
            (0.0, body_h),
        ]
        out.add("base", lathe_mesh(profile, segments=20), _pick(rng, FABRIC + PLASTIC))
        out.add("stem", cylinder_mesh((0, 0, body_h), (0, 0, stem_top), 0.012, segments=8), metal)
    shade = str(rng.choice(["drum", "cone", "bell", "dome"]))
    size = _u(rng, 0.14, 0.25) * (1.3 if floor else 1.0)
    bottom = stem_top - size * _u(rng, 0.3, 0.6)
    t = 0.008
    if shade == "drum":
        heights = [(size, 0.0), (size, size * 0.9)]
    elif shade == "cone":
        heights = [(size, 0.0), (size * 0.55, size * 0.8)]
    elif shade == "bell":
        heights = [(size, 0.0), (size * 0.8, size * 0.25), (size * 0.55, size * 0.6), (size * 0.45, size * 0.85)]
    else:
        heights = [(size * math.sin(a), size * 0.7 * math.cos(a)) for a in np.linspace(math.pi / 2, 0.25, 5)]
    outer = [(r, bottom + z) for r, z in heights]
    inner = [(r - t, bottom + z) for r, z in heights[::-1]]
    out.add("shade", lathe_mesh(outer + inner, segments=24, closed_loop=True), shade_color)
    out.add("bulb", ellipsoid_mesh((0, 0, stem_top), (0.03, 0.03, 0.04), 8, 4), bulb)


def _telephone(rng, out: _Parts):
    height = _u(rng, 0.13, 0.17)
    width = height * _u(rng, 0.45, 0.53)
    thickness = _u(rng, 0.007, 0.011)
    corner = width * _u(rng, 0.05, 0.18)
    case = _pick(rng, PLASTIC + METAL + [(0.85, 0.75, 0.65), (0.3, 0.4, 0.55), (0.75, 0.5, 0.55)])
    bezel = _u(rng, 0.002, 0.007)
    home_button = rng.random() < 0.3
    z = height / 2
    outline = rounded_rectangle(width, height, corner) + [0, z]
    out.add("body", extrude_mesh(outline, -thickness / 2, thickness / 2, axes=(1, 2)), case)
    chin = 0.018 if home_button else bezel
    top = 0.015 if home_button else bezel
    screen = rounded_rectangle(width - 2 * bezel, height - chin - top, corner * 0.7) + [
        0,
        chin + (height - chin - top) / 2,
    ]
    out.add("screen", extrude_mesh(screen, thickness / 2, thickness / 2 + 0.0008, axes=(1, 2)), SCREEN)
    if home_button:
        out.add(
            "button",
            cylinder_mesh((thickness / 2, 0, chin / 2), (thickness / 2 + 0.0008, 0, chin / 2), 0.005, segments=14),
            case,
        )
    lenses = int(rng.integers(1, 4))
    module = str(rng.choice(["square", "round", "strip"]))
    lens = width * 0.07
    cy, cz = width / 2 - 0.012 - lens, height - 0.012 - lens  # top left, seen from behind (+y)
    if module == "square" and lenses > 1:
        out.add(
            "camera",
            extrude_mesh(
                rounded_rectangle(4.6 * lens, 4.6 * lens, lens) + [cy - 0.7 * lens, cz - 0.7 * lens],
                -thickness / 2 - 0.0012,
                -thickness / 2,
                axes=(1, 2),
            ),
            _jitter(rng, case, 0.08),
        )
    for k in range(lenses):
        ly = cy - (1.6 * lens * k if module == "strip" else 1.5 * lens * (k % 2))
        lz = cz - (0 if module == "strip" else 1.5 * lens * (k // 2))
        lens_mesh = cylinder_mesh(
            (-thickness / 2 - 0.0005, ly, lz), (-thickness / 2 - 0.002, ly, lz), lens * 0.7, segments=14
        )
        out.add("camera", lens_mesh, RUBBER)
    for k, length in enumerate((0.02, 0.012)[: int(rng.integers(1, 3))]):
        out.add(
            "button",
            box_mesh((0, width / 2 + 0.0005, height * 0.72 - k * 0.03), (thickness * 0.5, 0.0015, length)),
            case,
        )


def _watercraft(rng, out: _Parts):
    style = str(rng.choice(["motorboat", "sailboat", "ship"]))
    length = _u(rng, 6, 12) if style != "ship" else _u(rng, 30, 60)
    beam = length * (_u(rng, 0.28, 0.38) if style != "ship" else _u(rng, 0.13, 0.18))
    depth = beam * _u(rng, 0.35, 0.5)
    hull_color = _pick(rng, [(0.95, 0.95, 0.95), (0.1, 0.15, 0.35), (0.7, 0.1, 0.1), (0.1, 0.1, 0.1), (0.2, 0.4, 0.3)])
    deck_color = _pick(rng, [(0.95, 0.95, 0.95), (0.72, 0.53, 0.34), (0.8, 0.8, 0.78)])
    sections = []
    stations = np.linspace(0, 1, 11)  # 0 at the stern (-x), 1 at the bow (+x)
    transom = _u(rng, 0.6, 0.9)
    for s in stations:
        # Half-beam: full from the stern to mid-ships, narrowing to a point at the bow.
        half = (
            beam / 2 * (transom + (1 - transom) * min(1.0, s / 0.45))
            if s <= 0.5
            else beam / 2 * (1 - ((s - 0.5) / 0.5) ** 1.6)
        )
        half = max(half, beam * 0.004)
        sheer = depth * (1 + 0.35 * s**2)
        keel = depth * 0.7 * max(0.0, (s - 0.75) / 0.25) ** 2
        x = -length / 2 + length * s
        points = [
            (-half, sheer),
            (-0.92 * half, keel + 0.4 * (sheer - keel)),
            (-0.4 * half, keel + 0.06 * depth),
            (0, keel),
            (0.4 * half, keel + 0.06 * depth),
            (0.92 * half, keel + 0.4 * (sheer - keel)),
            (half, sheer),
        ]
        sections.append(np.array([[x, y, z] for y, z in points]))
    out.add("hull", loft_mesh(sections), hull_color)
    out.add(
        "deck",
        box_mesh((-length * 0.1, 0, depth + 0.005 * length), (length * 0.7, beam * 0.8, 0.01 * length)),
        deck_color,
    )
    accent = _pick(rng, PAINT)
    deck = depth + 0.01 * length
    if style == "motorboat":
        cabin_x = _u(rng, -0.15, 0.05) * length
        cabin_len, cabin_h = length * _u(rng, 0.2, 0.35), beam * _u(rng, 0.25, 0.4)
        cabin = [
            (cabin_x - cabin_len / 2, deck),
            (cabin_x + cabin_len / 2, deck),
            (cabin_x + cabin_len * 0.15, deck + cabin_h),
            (cabin_x - cabin_len / 2, deck + cabin_h),
        ]
        out.add("cabin", extrude_mesh(cabin, -beam * 0.3, beam * 0.3, axes=(0, 2)), deck_color)
        out.add(
            "windows",
            extrude_mesh(
                [
                    (x + 0.01 * length, z) if k in (1, 2) else (x, z)
                    for k, (x, z) in enumerate(
                        [
                            (cabin_x - cabin_len * 0.3, deck + cabin_h * 0.5),
                            (cabin_x + cabin_len * 0.32, deck + cabin_h * 0.5),
                            (cabin_x + cabin_len * 0.12, deck + cabin_h * 0.9),
                            (cabin_x - cabin_len * 0.3, deck + cabin_h * 0.9),
                        ]
                    )
                ],
                -beam * 0.31,
                beam * 0.31,
                axes=(0, 2),
            ),
            GLASS,
        )
    elif style == "sailboat":
        mast_x = length * _u(rng, 0.0, 0.15)
        mast_h = length * _u(rng, 1.0, 1.4)
        out.add(
            "mast", cylinder_mesh((mast_x, 0, deck), (mast_x, 0, deck + mast_h), length * 0.008, segments=8), METAL[1]
        )
        sail = (0.97, 0.96, 0.92, 1.0)
        boom = length * _u(rng, 0.35, 0.5)
        out.add(
            "sail",
            extrude_mesh(
                [
                    (mast_x - 0.01 * length, deck + 0.06 * length),
                    (mast_x - 0.01 * length, deck + mast_h * 0.97),
                    (mast_x - boom, deck + 0.06 * length),
                ],
                -0.004 * length,
                0.004 * length,
                axes=(0, 2),
            ),
            sail,
        )
        if rng.random() < 0.7:
            bow = length / 2 * 0.92
            out.add(
                "sail",
                extrude_mesh(
                    [
                        (mast_x + 0.01 * length, deck + 0.05 * length),
                        (mast_x + 0.01 * length, deck + mast_h * 0.85),
                        (bow, deck + 0.05 * length),
                    ],
                    -0.004 * length,
                    0.004 * length,
                    axes=(0, 2),
                ),
                _jitter(rng, sail),
            )
        out.add(
            "cabin",
            box_mesh((-length * 0.12, 0, deck + beam * 0.08), (length * 0.25, beam * 0.45, beam * 0.16)),
            deck_color,
        )
    else:
        bridge_x = -length * _u(rng, 0.1, 0.3)
        levels = int(rng.integers(2, 4))
        level_h = beam * 0.22
        for k in range(levels):
            size = (length * (0.3 - 0.06 * k), beam * (0.8 - 0.1 * k), level_h)
            out.add("cabin", box_mesh((bridge_x, 0, deck + level_h * (k + 0.5)), size), deck_color)
        out.add(
            "windows",
            box_mesh(
                (bridge_x + length * (0.3 - 0.06 * (levels - 1)) / 2, 0, deck + level_h * (levels - 0.45)),
                (0.004 * length, beam * (0.8 - 0.1 * (levels - 1)) * 0.9, level_h * 0.35),
            ),
            GLASS,
        )
        funnel_x = bridge_x - length * 0.08
        funnel_z = deck + levels * level_h
        out.add(
            "funnel",
            cylinder_mesh(
                (funnel_x, 0, funnel_z), (funnel_x - 0.02 * length, 0, funnel_z + beam * 0.5), beam * 0.13, segments=14
            ),
            accent,
        )
        if rng.random() < 0.6:  # containers forward
            for k in range(int(rng.integers(2, 5))):
                x = bridge_x + length * (0.2 + 0.1 * k)
                if x < length * 0.32:
                    out.add(
                        "cargo",
                        box_mesh((x, 0, deck + beam * 0.15), (length * 0.08, beam * 0.7, beam * 0.3)),
                        _pick(rng, PAINT),
                    )


def _loudspeaker(rng, out: _Parts):
    tower = rng.random() < 0.4
    width, depth = _u(rng, 0.16, 0.3), _u(rng, 0.18, 0.32)
    height = _u(rng, 0.8, 1.1) if tower else _u(rng, 0.25, 0.45)
    cabinet = _pick(rng, WOOD + PLASTIC)
    baffle = cabinet if rng.random() < 0.5 else _pick(rng, PLASTIC)
    feet = _u(rng, 0.0, 0.04) if tower else 0.0
    out.add("body", box_mesh((0, 0, feet + height / 2), (depth, width, height)), cabinet)
    out.add(
        "baffle", box_mesh((depth / 2 + 0.004, 0, feet + height / 2), (0.008, width - 0.01, height - 0.01)), baffle
    )
    if feet:
        for x in (depth / 2 - 0.03, -depth / 2 + 0.03):
            for y in (width / 2 - 0.03, -width / 2 + 0.03):
                out.add("foot", cylinder_mesh((x, y, 0), (x, y, feet), 0.012, 0.006, segments=8), METAL[0])
    cone, surround = _pick(rng, [(0.1, 0.1, 0.1), (0.75, 0.75, 0.72), (0.85, 0.7, 0.2), (0.15, 0.2, 0.4)]), RUBBER
    front = depth / 2 + 0.008
    count = int(rng.integers(1, 4)) if tower else 1
    tweeter_z = feet + height - 0.08
    room = tweeter_z - 0.04 - feet - 0.03  # the height left under the tweeter for the woofers
    woofer = min(width * _u(rng, 0.33, 0.42), (room - 0.015 * (count - 1)) / (2 * count))
    z = tweeter_z - 0.04 - woofer
    for _ in range(count):
        out.add("driver", cylinder_mesh((front, 0, z), (front + 0.01, 0, z), woofer, woofer * 0.95, 20), surround)
        out.add(
            "driver", cylinder_mesh((front + 0.01, 0, z), (front + 0.018, 0, z), woofer * 0.8, woofer * 0.25, 20), cone
        )
        z -= 2 * woofer + 0.015
    out.add("tweeter", ellipsoid_mesh((front + 0.004, 0, tweeter_z), (0.012, 0.022, 0.022), 12, 6), cone)
    if rng.random() < 0.5 and z + 0.015 + woofer > feet + 0.08:  # a bass port, where there is room under the woofers
        out.add(
            "port", cylinder_mesh((front, 0, feet + 0.05), (front + 0.003, 0, feet + 0.05), 0.02, segments=12), RUBBER
        )


def _rifle(rng, out: _Parts):
    length = _u(rng, 0.9, 1.3)
    wood, metal = _pick(rng, WOOD + PLASTIC[:1] + [(0.45, 0.42, 0.3)]), _pick(rng, METAL[:1] + METAL[2:3])
    butt, grip = -length / 2, -length / 2 + length * _u(rng, 0.25, 0.32)
    axis_z = _u(rng, 0.08, 0.1)
    drop = _u(rng, 0.0, 0.04)
    stock = [
        (butt, axis_z - 0.07 - drop),
        (butt, axis_z + 0.03 - drop),
        (grip, axis_z + 0.02),
        (grip + 0.04, axis_z - 0.03),
        (grip - 0.01, axis_z - 0.05),
        (butt + 0.1, axis_z - 0.035 - drop),
    ]
    out.add("stock", extrude_mesh(stock, -0.02, 0.02, axes=(0, 2)), wood)
    receiver = length * _u(rng, 0.22, 0.3)
    out.add("receiver", box_mesh((grip + receiver / 2, 0, axis_z), (receiver, 0.035, 0.05)), metal)
    front = grip + receiver
    guard = length * _u(rng, 0.15, 0.3)
    out.add(
        "handguard",
        box_mesh((front + guard / 2, 0, axis_z - 0.005), (guard, 0.04, 0.045)),
        wood if rng.random() < 0.6 else metal,
    )
    out.add(
        "barrel",
        cylinder_mesh((front, 0, axis_z + 0.005), (length / 2, 0, axis_z + 0.005), _u(rng, 0.008, 0.012), segments=12),
        metal,
    )
    handle = [
        (grip + 0.02, axis_z - 0.02),
        (grip + 0.06, axis_z - 0.02),
        (grip + 0.03, axis_z - 0.11),
        (grip - 0.01, axis_z - 0.11),
    ]
    out.add("grip", extrude_mesh(handle, -0.016, 0.016, axes=(0, 2)), wood)
    if rng.random() < 0.6:
        mag_x = grip + receiver * 0.65
        curve = _u(rng, 0.0, 0.05)
        magazine = [
            (mag_x - 0.02, axis_z - 0.02),
            (mag_x + 0.02, axis_z - 0.02),
            (mag_x + 0.02 + curve, axis_z - 0.13),
            (mag_x - 0.02 + curve, axis_z - 0.13),
        ]
        out.add("magazine", extrude_mesh(magazine, -0.013, 0.013, axes=(0, 2)), metal)
    if rng.random() < 0.5:
        scope_x0, scope_x1 = grip + 0.01, grip + receiver + 0.02
        z = axis_z + 0.06
        out.add("scope", cylinder_mesh((scope_x0, 0, z), (scope_x1, 0, z), 0.014, segments=12), metal)
        out.add("scope", cylinder_mesh((scope_x1, 0, z), (scope_x1 + 0.05, 0, z), 0.014, 0.022, segments=12), metal)
        out.add("scope", cylinder_mesh((scope_x0 - 0.04, 0, z), (scope_x0, 0, z), 0.02, 0.014, segments=12), metal)
        out.add("mount", box_mesh(((scope_x0 + scope_x1) / 2, 0, axis_z + 0.035), (0.04, 0.012, 0.03)), metal)
    else:
        out.add("sight", box_mesh((length / 2 - 0.02, 0, axis_z + 0.025), (0.01, 0.004, 0.02)), metal)


GENERATORS = {
    "airplane": _airplane,
    "bench": _bench,
    "cabinet": _cabinet,
    "car": _car,
    "chair": _chair,
    "display": _display,
    "lamp": _lamp,
    "loudspeaker": _loudspeaker,
    "rifle": _rifle,
    "sofa": _sofa,
    "table": _table,
    "telephone": _telephone,
    "watercraft": _watercraft,
}
CATEGORIES = tuple(sorted(GENERATORS))
"""The category names [`make_object`] knows: 13, as NMR."""


def make_object(category: str, seed: int) -> list[Part]:
    """One procedural object of `category`, the same to the byte for the same `(category, seed)`.

    Returns its parts (closed, outward-facing triangle meshes with one colour each), z up, standing on z = 0,
    its front towards +x (see the module docstring for what "front" means per category).

    Example:
        ```py
        >>> parts = make_object("car", seed=7)
        >>> sorted({part.name for part in parts})[:3]
        ['body', 'bumper', 'grille']
        ```
    """
    if category not in GENERATORS:
        raise ValueError(f"Unknown category {category!r}; choose one of {', '.join(CATEGORIES)}.")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    rng = np.random.default_rng([zlib.crc32(category.encode()), int(seed)])
    out = _Parts()
    GENERATORS[category](rng, out)
    return out.parts
