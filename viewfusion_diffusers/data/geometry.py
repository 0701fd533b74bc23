"""Shape-building for the procedural objects: closed, outward-facing triangle meshes and the coloured parts they make.

Every mesh builder returns `(vertices, faces)`: `(N, 3)` float64 vertices and `(M, 3)` int64 faces, counter-clockwise
seen from outside, so the signed volume is positive. Boxes, cylinders and cones, ellipsoids, lathed profiles
(surfaces of revolution), extruded polygons and lofted cross-sections cover every part of
[`viewfusion_diffusers.data.categories`]; [`Part`] is one such mesh with its colour, and [`parts_bounds`] frames a
list of them.

Example:
    ```py
    >>> from viewfusion_diffusers.data.geometry import box_mesh, signed_volume
    >>> signed_volume(*box_mesh((0, 0, 0), (1, 2, 3)))
    6.0
    ```
"""

import math
from typing import NamedTuple

import numpy as np


# ----------------------------------------------------------------------------------------------------------------
# Mesh builders: each returns (vertices, faces) of a closed mesh whose faces point outwards.


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """The signed volume of a closed triangle mesh: positive when its faces point outwards.

    Example:
        ```py
        >>> signed_volume(*box_mesh((0, 0, 0), (1, 2, 3)))
        6.0
        ```
    """
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)


def _outward(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if signed_volume(vertices, faces) < 0:
        faces = faces[:, ::-1].copy()
    return vertices, faces


def box_mesh(center, size) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box.

    Example:
        ```py
        >>> vertices, faces = box_mesh((0, 0, 0.5), (1, 1, 1))
        >>> vertices.shape, faces.shape
        ((8, 3), (12, 3))
        ```
    """
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    vertices = np.asarray(center, dtype=np.float64) + signs * np.asarray(size, dtype=np.float64) / 2
    # Index 4 x + 2 y + z; each quad listed counter-clockwise seen from outside.
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return _outward(vertices, faces)


def _tube(rings: list[np.ndarray], caps="fan", closed_loop: bool = False, cap_triangles=None):
    """Join rings of K points (each (K, 3), or (1, 3) for an apex) into a closed surface."""
    vertices, ids = [], []
    for ring in rings:
        ring = np.asarray(ring, dtype=np.float64).reshape(-1, 3)
        ids.append(list(range(len(vertices), len(vertices) + len(ring))))
        vertices += list(ring)
    count = max(len(r) for r in ids)
    ids = [r * count if len(r) == 1 else r for r in ids]
    faces = []
    pairs = range(len(ids)) if closed_loop else range(len(ids) - 1)
    for i in pairs:
        lower, upper = ids[i], ids[(i + 1) % len(ids)]
        for j in range(count):
            quad = (lower[j], lower[(j + 1) % count], upper[(j + 1) % count], upper[j])
            for triangle in ((quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])):
                if len(set(triangle)) == 3:
                    faces.append(triangle)
    if not closed_loop:
        for ring, forward in ((ids[0], False), (ids[-1], True)):
            if len(set(ring)) == 1:
                continue  # an apex closes itself
            if cap_triangles is not None:
                faces += [tuple(ring[k] for k in (t if forward else t[::-1])) for t in cap_triangles]
            else:
                centre = len(vertices)
                vertices.append(np.mean([vertices[k] for k in ring], axis=0))
                faces += [
                    (centre, ring[j], ring[(j + 1) % count]) if forward else (centre, ring[(j + 1) % count], ring[j])
                    for j in range(count)
                ]
    return _outward(np.array(vertices), faces)


def _frame(direction):
    direction = np.asarray(direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    helper = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u)
    return direction, u, np.cross(direction, u)


def lathe_mesh(profile, start=(0, 0, 0), direction=(0, 0, 1), segments: int = 20, closed_loop: bool = False):
    """A surface of revolution: `profile` is a list of `(radius, distance along direction)` from `start`.

    A radius of 0 at an end makes an apex; `closed_loop=True` joins the last point to the first (a shell with
    thickness, such as a lamp shade, drawn as its cross-section).

    Example:
        ```py
        >>> vertices, faces = lathe_mesh([(0.0, 0.0), (1.0, 0.5), (0.0, 1.0)])  # a double cone
        ```
    """
    axis, u, v = _frame(direction)
    angles = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    circle = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v
    start = np.asarray(start, dtype=np.float64)
    rings = [start + t * axis + (circle * r if r > 0 else np.zeros((1, 3))) for r, t in profile]
    return _tube(rings, closed_loop=closed_loop)


def cylinder_mesh(start, end, radius: float, radius_end: float | None = None, segments: int = 20):
    """A capped cylinder (or cone frustum, or cone when `radius_end` is 0) from `start` to `end`.

    Example:
        ```py
        >>> vertices, faces = cylinder_mesh((0, 0, 0), (0, 0, 1), 0.1)
        ```
    """
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    length = float(np.linalg.norm(end - start))
    radius_end = radius if radius_end is None else radius_end
    return lathe_mesh([(radius, 0.0), (radius_end, length)], start, end - start, segments)


def ellipsoid_mesh(center, radii, segments: int = 16, rings: int = 8):
    """An ellipsoid (a sphere when the three radii are equal).

    Example:
        ```py
        >>> vertices, faces = ellipsoid_mesh((0, 0, 1), (0.2, 0.2, 0.2))
        ```
    """
    theta = np.linspace(0, math.pi, rings + 1)
    vertices, faces = lathe_mesh([(math.sin(t), 1 - math.cos(t)) for t in theta], (0, 0, -1), (0, 0, 1), segments)
    return _outward(vertices * np.asarray(radii) + np.asarray(center), faces)


def triangulate_polygon(points) -> list[tuple[int, int, int]]:
    """Ear-clipping triangulation of a simple polygon (`(K, 2)`, either orientation), counter-clockwise triangles.

    Example:
        ```py
        >>> triangulate_polygon([(0, 0), (2, 0), (2, 2), (1, 1), (0, 2)])
        [(1, 2, 3), (0, 1, 3), (0, 3, 4)]
        ```
    """
    points = np.asarray(points, dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    if abs(area) < 1e-12:
        raise ValueError("cannot triangulate a polygon of zero area")
    order = list(range(len(points))) if area > 0 else list(range(len(points)))[::-1]

    def cross(a, b, c):
        return (points[b][0] - points[a][0]) * (points[c][1] - points[a][1]) - (points[b][1] - points[a][1]) * (
            points[c][0] - points[a][0]
        )

    scale = float(np.ptp(points, axis=0).max()) ** 2
    triangles = []
    while len(order) > 3:
        for i in range(len(order)):
            a, b, c = order[i - 1], order[i], order[(i + 1) % len(order)]
            turn = cross(a, b, c)
            if abs(turn) <= 1e-12 * scale:  # a collinear vertex adds nothing: drop it
                order.pop(i)
                break
            if turn < 0:
                continue
            others = (p for p in order if p not in (a, b, c))
            if any(cross(a, b, p) >= 0 and cross(b, c, p) >= 0 and cross(c, a, p) >= 0 for p in others):
                continue
            triangles.append((a, b, c))
            order.pop(i)
            break
        else:
            raise ValueError("cannot triangulate the polygon: it intersects itself")
    if len(order) == 3 and abs(cross(*order)) > 1e-12 * scale:
        triangles.append(tuple(order))
    return triangles


def extrude_mesh(polygon, low: float, high: float, axes=(0, 2)):
    """A prism: the 2D `polygon` in the plane of world axes `axes`, extruded from `low` to `high` along the third.

    `axes=(0, 2)` draws the polygon in (x, z) (a side profile) and extrudes it along y.

    Example:
        ```py
        >>> vertices, faces = extrude_mesh([(0, 0), (1, 0), (0, 1)], -0.1, 0.1, axes=(0, 2))
        ```
    """
    polygon = np.asarray(polygon, dtype=np.float64)
    third = 3 - axes[0] - axes[1]
    rings = []
    for depth in (low, high):
        ring = np.zeros((len(polygon), 3))
        ring[:, axes[0]], ring[:, axes[1]], ring[:, third] = polygon[:, 0], polygon[:, 1], depth
        rings.append(ring)
    return _tube(rings, cap_triangles=triangulate_polygon(polygon))


def loft_mesh(sections):
    """A closed surface through a sequence of cross-sections (each `(K, 3)`, the same K), capped at both ends.

    Example:
        ```py
        >>> square = np.array([[0, -1, -1], [0, 1, -1], [0, 1, 1], [0, -1, 1.0]])
        >>> vertices, faces = loft_mesh([square, square * [1, 0.5, 0.5] + [1, 0, 0]])  # a tapered beam
        ```
    """
    return _tube([np.asarray(s, dtype=np.float64) for s in sections])


def rotate_z(mesh, degrees: float, pivot=(0.0, 0.0, 0.0)):
    """`mesh` turned about the vertical axis through `pivot`.

    Example:
        ```py
        >>> vertices, faces = rotate_z(box_mesh((1, 0, 0), (0.2, 0.2, 0.2)), 90)  # now centred on (0, 1, 0)
        ```
    """
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    pivot = np.asarray(pivot, dtype=np.float64)
    return (mesh[0] - pivot) @ rotation.T + pivot, mesh[1]


def rounded_rectangle(width: float, height: float, radius: float, segments: int = 4) -> np.ndarray:
    """A `(K, 2)` rectangle centred on the origin with quarter-circle corners.

    Example:
        ```py
        >>> vertices, faces = extrude_mesh(rounded_rectangle(0.4, 0.2, 0.05), 0.0, 0.01, axes=(0, 1))  # a tray
        ```
    """
    radius = min(radius, width / 2 * 0.999, height / 2 * 0.999)
    points = []
    for cx, cy, start in ((1, 1, 0), (-1, 1, 90), (-1, -1, 180), (1, -1, 270)):
        for k in range(segments + 1):
            angle = math.radians(start + 90 * k / segments)
            points.append(
                (
                    cx * (width / 2 - radius) + radius * math.cos(angle),
                    cy * (height / 2 - radius) + radius * math.sin(angle),
                )
            )
    return np.array(points)


# ----------------------------------------------------------------------------------------------------------------
# Coloured parts: what an object is made of.


class Part(NamedTuple):
    """One coloured part of a generated object: a closed triangle mesh, outward-facing.

    Example:
        ```py
        >>> part = Part(*box_mesh((0, 0, 0.5), (1, 1, 1)), (0.6, 0.4, 0.2, 1.0), "seat")
        >>> part.vertices.shape, part.faces.shape
        ((8, 3), (12, 3))
        ```
    """

    vertices: np.ndarray  # (N, 3) float64
    faces: np.ndarray  # (M, 3) int64, counter-clockwise seen from outside
    rgba: tuple  # (r, g, b, a) in [0, 1]
    name: str


def parts_bounds(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """`(lower, upper)` corners of the axis-aligned box around every part (any tuples whose first item is the
    `(N, 3)` vertices, as `Part` and the `(vertices, faces, color)` of `meshes.parts_by_color`).

    Example:
        ```py
        >>> box = Part(*box_mesh((0, 0, 0.5), (1, 2, 1)), (0.5, 0.5, 0.5, 1.0), "box")
        >>> [corner.tolist() for corner in parts_bounds([box])]
        [[-0.5, -1.0, 0.0], [0.5, 1.0, 1.0]]
        ```
    """
    vertices = np.concatenate([part[0] for part in parts])
    return vertices.min(axis=0), vertices.max(axis=0)
