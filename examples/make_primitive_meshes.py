"""Write a folder of simple coloured meshes (boxes, cylinders, cones, L-shapes, tables) as OBJ + MTL files.

    python examples/make_primitive_meshes.py --output_dir meshes/primitives --count 60
    viewfusion render --meshes meshes/primitives --output_dir data/primitives-64

Objects unlike pybullet's random blobs, with proportions and colours drawn from a seed: a stand-in for "your own
meshes" when trying the fine-tuning recipe in the README. Each shape kind is a category (a sub-folder).
"""

import argparse
import math
from pathlib import Path

import numpy as np


def box(size, offset=(0.0, 0.0, 0.0)):
    x, y, z = (s / 2 for s in size)
    corners = np.array(
        [[-x, -y, -z], [x, -y, -z], [x, y, -z], [-x, y, -z], [-x, -y, z], [x, -y, z], [x, y, z], [-x, y, z]]
    )
    faces = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
    return corners + offset, faces


def frustum(bottom_radius, top_radius, height, segments=32):
    """A cylinder (equal radii) or a cone (top radius near zero), standing on z = -height / 2."""
    angles = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    vertices = np.concatenate(
        [
            np.c_[bottom_radius * ring, np.full(segments, -height / 2)],
            np.c_[top_radius * ring, np.full(segments, height / 2)],
        ]
    )
    sides = [(k, (k + 1) % segments, segments + (k + 1) % segments, segments + k) for k in range(segments)]
    caps = [tuple(range(segments - 1, -1, -1)), tuple(range(segments, 2 * segments))]
    return vertices, sides + caps


def union(*parts):
    vertices, faces = [], []
    for part_vertices, part_faces in parts:
        faces += [tuple(i + sum(len(v) for v in vertices) for i in face) for face in part_faces]
        vertices.append(part_vertices)
    return np.concatenate(vertices), faces


def make_shape(kind: str, rng: np.random.Generator):
    u = lambda low, high: float(rng.uniform(low, high))
    if kind == "box":
        return box((u(0.3, 1.0), u(0.3, 1.0), u(0.3, 1.0)))
    if kind == "cylinder":
        return frustum(r := u(0.15, 0.5), r, u(0.3, 1.2))
    if kind == "cone":
        return frustum(u(0.2, 0.6), u(0.0, 0.1) + 1e-3, u(0.4, 1.2))
    if kind == "l_shape":
        length, width, thickness, height = u(0.6, 1.2), u(0.2, 0.6), u(0.15, 0.3), u(0.5, 1.2)
        return union(
            box((length, width, thickness)),
            box((thickness, width, height), offset=((length - thickness) / 2, 0, (height + thickness) / 2)),
        )
    if kind == "table":
        width, depth, height, leg = u(0.6, 1.2), u(0.4, 1.0), u(0.4, 0.9), u(0.05, 0.12)
        legs = [
            box((leg, leg, height), offset=(sx * (width - leg) / 2, sy * (depth - leg) / 2, 0))
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
        return union(box((width, depth, 0.06), offset=(0, 0, height / 2 + 0.03)), *legs)
    raise ValueError(f"unknown shape {kind!r}")


def write_obj(path: Path, vertices: np.ndarray, faces, color) -> None:
    path.with_suffix(".mtl").write_text(f"newmtl paint\nKd {color[0]:.3f} {color[1]:.3f} {color[2]:.3f}\n")
    lines = [f"mtllib {path.stem}.mtl", "usemtl paint"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += ["f " + " ".join(str(i + 1) for i in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--count", type=int, default=60, help="Objects in all (spread over the shape kinds).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    kinds = ("box", "cylinder", "cone", "l_shape", "table")
    rng = np.random.default_rng(args.seed)
    for k in range(args.count):
        kind = kinds[k % len(kinds)]
        folder = Path(args.output_dir) / kind
        folder.mkdir(parents=True, exist_ok=True)
        vertices, faces = make_shape(kind, rng)
        # Turn each object about z, so the shapes have no shared front.
        angle = rng.uniform(0, 2 * math.pi)
        rotation = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
        write_obj(folder / f"{kind}_{k:03d}.obj", vertices @ rotation.T, faces, rng.uniform(0.1, 0.9, size=3))
    print(f"Wrote {args.count} meshes under {args.output_dir}")


if __name__ == "__main__":
    main()
