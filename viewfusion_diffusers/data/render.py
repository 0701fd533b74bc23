"""`viewfusion-render`: render the meshes that ship with pybullet into the NMR dataset layout.

    viewfusion-render --output_dir data/pybullet-64 --source all

Output (the layout of NMR, as used by DVR, pixelNeRF and ViewFusion)::

    <root>/metadata.yaml                          category -> {id, name}
    <root>/<category>/{train,val,test}.lst        object ids, one a line (seeded split, 80 / 10 / 10)
    <root>/<category>/<object>/image/0000.png .. 0023.png
    <root>/<category>/<object>/cameras.npz        world_mat_k, camera_mat_k and their _inv_ variants

Views: azimuth `15 * k` degrees for view `k`, elevation 30 degrees, white background, the object's
bounding-box centre at the origin. The camera sits at `distance = radius / sin(fov / 2)` from the centre, where
`radius` is the half-diagonal of the bounding box: the bounding sphere touches the edges of the image, so
nothing is clipped at any azimuth. The light is fixed in the world (it does not follow the camera), with a
low ambient and a strong diffuse term, so a view and the one opposite it are shaded differently: the only cue
from which a pose-free model can tell where azimuth 0 is on objects that have no canonical front.

Camera conventions (as NMR's ``cameras.npz``):

- ``world_mat_k`` (4x4) maps world to camera coordinates, OpenCV-style: x right, y down, z forward.
- ``camera_mat_k`` (4x4) maps camera coordinates to normalised image coordinates: ``u = f x / z``,
  ``v = f y / z`` with ``f = 1 / tan(fov / 2)``; ``(u, v)`` in [-1, 1] span the image, (-1, -1) the top-left
  corner. The pixel column is ``(u + 1) / 2 * W`` and the row ``(v + 1) / 2 * H``.

Rendering uses pybullet's CPU renderer (``ER_TINY_RENDERER``), 2x supersampled then reduced, and is
deterministic: the same inputs give byte-identical PNGs.
"""

import argparse
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
import yaml
from tqdm.auto import tqdm

NUM_VIEWS = 24
ELEVATION_DEGREES = 30.0
FOV_DEGREES = 40.0
# Light from a fixed direction in the world (front-left, above), low ambient, strong diffuse.
LIGHT_DIRECTION = (1.0, -0.6, 1.2)
LIGHT_AMBIENT, LIGHT_DIFFUSE, LIGHT_SPECULAR = 0.25, 0.85, 0.05

# Named models from pybullet_data that load and render as single objects.
NAMED_MODELS = (
    "duck_vhacd.urdf", "teddy_vhacd.urdf", "table/table.urdf", "lego/lego.urdf", "r2d2.urdf",
    "soccerball.urdf", "sphere2red.urdf", "cube_small.urdf", "tray/traybox.urdf", "jenga/jenga.urdf",
    "domino/domino.urdf", "table_square/table_square.urdf", "torus/torus.urdf", "samurai.urdf",
)
CATEGORY_NAMES = {"random_urdfs": "pybullet random_urdfs blobs", "named": "pybullet named models"}


def camera_matrices(azimuth_degrees: float, elevation_degrees: float, distance: float, fov_degrees: float = FOV_DEGREES):
    """`(world_mat, camera_mat)` of a camera on a sphere around the origin, looking at it, z up.

    Example:
        ```py
        >>> world_mat, camera_mat = camera_matrices(0.0, 30.0, 2.0)
        >>> point = camera_mat @ world_mat @ np.array([0, 0, 0, 1.0])
        >>> point[:2] / point[2]  # the origin lands on the image centre
        array([0., 0.])
        ```
    """
    azimuth, elevation = math.radians(azimuth_degrees), math.radians(elevation_degrees)
    eye = distance * np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    world_mat = np.eye(4)
    world_mat[:3, :3] = rotation
    world_mat[:3, 3] = -rotation @ eye
    focal = 1.0 / math.tan(math.radians(fov_degrees) / 2)
    camera_mat = np.diag([focal, focal, 1.0, 1.0])
    return world_mat, camera_mat, eye


def object_bounds(client, body: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds of all links of a body (pybullet's visual AABBs)."""
    import pybullet as p

    boxes = [p.getAABB(body, link, physicsClientId=client) for link in range(-1, p.getNumJoints(body, physicsClientId=client))]
    lower = np.min([b[0] for b in boxes], axis=0)
    upper = np.max([b[1] for b in boxes], axis=0)
    return lower, upper


def render_body(client, body: int, resolution: int = 64, supersample: int = 2):
    """Render the 24 views of a loaded pybullet body.

    Returns:
        `(images, cameras, center, radius)`: `images` is `(24, resolution, resolution, 3)` uint8, `cameras` the
        `cameras.npz` dictionary, `center` and `radius` the bounding sphere used for framing (world units).

    Example:
        ```py
        >>> client = p.connect(p.DIRECT)
        >>> body = p.loadURDF("duck_vhacd.urdf", physicsClientId=client)
        >>> images, cameras, center, radius = render_body(client, body)
        ```
    """
    import pybullet as p

    lower, upper = object_bounds(client, body)
    center = (lower + upper) / 2
    radius = float(np.linalg.norm(upper - lower) / 2)
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"body {body} has an empty or invalid bounding box {lower} .. {upper}")
    # Move the object so its bounding-box centre is at the origin.
    position, orientation = p.getBasePositionAndOrientation(body, physicsClientId=client)
    p.resetBasePositionAndOrientation(body, np.asarray(position) - center, orientation, physicsClientId=client)

    distance = radius / math.sin(math.radians(FOV_DEGREES) / 2)
    size = resolution * supersample
    projection = p.computeProjectionMatrixFOV(FOV_DEGREES, 1.0, distance - radius * 1.01, distance + radius * 1.01)
    images, cameras = [], {}
    for k in range(NUM_VIEWS):
        world_mat, camera_mat, eye = camera_matrices(15.0 * k, ELEVATION_DEGREES, distance)
        # pybullet wants an OpenGL view matrix (camera looks down -z, y up), column-major.
        view = np.diag([1.0, -1.0, -1.0, 1.0]) @ world_mat
        _, _, rgba, _, segmentation = p.getCameraImage(
            size, size, viewMatrix=view.T.reshape(-1).tolist(), projectionMatrix=projection,
            renderer=p.ER_TINY_RENDERER, lightDirection=LIGHT_DIRECTION, lightAmbientCoeff=LIGHT_AMBIENT,
            lightDiffuseCoeff=LIGHT_DIFFUSE, lightSpecularCoeff=LIGHT_SPECULAR, shadow=0, physicsClientId=client,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[..., :3].copy()
        rgb[np.asarray(segmentation).reshape(size, size) < 0] = 255
        image = PIL.Image.fromarray(rgb).resize((resolution, resolution), PIL.Image.BOX) if supersample > 1 else PIL.Image.fromarray(rgb)
        images.append(np.asarray(image))
        cameras[f"world_mat_{k}"] = world_mat
        cameras[f"camera_mat_{k}"] = camera_mat
        cameras[f"world_mat_inv_{k}"] = np.linalg.inv(world_mat)
        cameras[f"camera_mat_inv_{k}"] = np.linalg.inv(camera_mat)
    return np.stack(images), cameras, center, radius


def render_urdf(urdf_path: str, resolution: int = 64, color=None, supersample: int = 2):
    """Render the 24 views of one URDF file in a fresh pybullet session (`color`: RGBA to override the URDF's)."""
    import pybullet as p

    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(urdf_path), useFixedBase=True, physicsClientId=client)
        if color is not None:
            for link in range(-1, p.getNumJoints(body, physicsClientId=client)):
                p.changeVisualShape(body, link, rgbaColor=list(color), physicsClientId=client)
        return render_body(client, body, resolution, supersample)
    finally:
        p.disconnect(client)


def list_sources(source: str) -> list[tuple[str, str, str]]:
    """`(category, object_id, urdf_path)` for the pybullet_data models named by `source`."""
    import pybullet_data

    root = Path(pybullet_data.getDataPath())
    objects = []
    if source in ("random_urdfs", "all"):
        objects += [("random_urdfs", d.name, str(d / f"{d.name}.urdf")) for d in sorted((root / "random_urdfs").iterdir())
                    if (d / f"{d.name}.urdf").is_file()]
    if source in ("named", "all"):
        objects += [("named", Path(name).stem, str(root / name)) for name in NAMED_MODELS if (root / name).is_file()]
    if not objects:
        raise ValueError(f"Unknown or empty source {source!r}; choose random_urdfs, named or all.")
    return objects


def split_object_ids(object_ids: list[str], seed: int) -> dict[str, list[str]]:
    """A seeded 80 / 10 / 10 train / val / test split (at least one object in each when there are three or more)."""
    ids = sorted(object_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    num_val = num_test = max(1, round(0.1 * len(ids))) if len(ids) >= 3 else 0
    shuffled = [ids[i] for i in order]
    return {
        "test": sorted(shuffled[:num_test]),
        "val": sorted(shuffled[num_test : num_test + num_val]),
        "train": sorted(shuffled[num_test + num_val :]),
    }


def write_text_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".tmp-", delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


def write_object(object_dir: Path, images: np.ndarray, cameras: dict) -> None:
    """Write one object into a temporary folder, then rename it into place: all of it appears, or nothing."""
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{object_dir.name}-", dir=object_dir.parent))
    try:
        (staging / "image").mkdir()
        for k, image in enumerate(images):
            PIL.Image.fromarray(image).save(staging / "image" / f"{k:04d}.png", format="PNG", optimize=False)
        np.savez(staging / "cameras.npz", **cameras)
        os.rename(staging, object_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def render_dataset(
    output_dir: str | os.PathLike,
    source: str = "random_urdfs",
    limit: int | None = None,
    resolution: int = 64,
    seed: int = 0,
    random_colors: bool = False,
    supersample: int = 2,
    show_progress: bool = True,
) -> dict:
    """Render pybullet_data models into the NMR layout under `output_dir`; resumable.

    Objects already rendered are skipped, and leftovers of an interrupted run (`.tmp-*` folders) are removed,
    so re-running the same command finishes the job.

    Args:
        output_dir: the dataset root.
        source (`str`): `"random_urdfs"` (1,000 objects), `"named"` (a few named models) or `"all"`.
        limit (`int`, *optional*): render only the first `limit` objects of each category.
        resolution (`int`, defaults to 64): image size.
        seed (`int`, defaults to 0): the split and the random colours.
        random_colors (`bool`): give each object a random colour (seeded by `seed` and the object) instead of
            the URDF's own.

    Returns:
        `dict` with counts: `rendered`, `skipped` (already there), `seconds_per_object`.

    Example:
        ```py
        >>> render_dataset("data/pybullet-64", source="random_urdfs", limit=20)
        ```
    """
    import time

    root = Path(output_dir)
    objects = list_sources(source)
    by_category: dict[str, list[tuple[str, str]]] = {}
    for category, object_id, path in objects:
        by_category.setdefault(category, []).append((object_id, path))
    if limit is not None:
        by_category = {c: items[:limit] for c, items in by_category.items()}

    root.mkdir(parents=True, exist_ok=True)
    metadata = {c: {"id": c, "name": CATEGORY_NAMES.get(c, c)} for c in sorted(by_category)}
    write_text_atomically(root / "metadata.yaml", yaml.safe_dump(metadata, sort_keys=True))
    for category, items in by_category.items():
        category_dir = root / category
        category_dir.mkdir(exist_ok=True)
        for stale in category_dir.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for split, ids in split_object_ids([object_id for object_id, _ in items], seed).items():
            write_text_atomically(category_dir / f"{split}.lst", "".join(f"{i}\n" for i in ids))

    todo = [(c, o, p) for c, items in by_category.items() for o, p in items if not (root / c / o).is_dir()]
    skipped = sum(len(items) for items in by_category.values()) - len(todo)
    start = time.perf_counter()
    for category, object_id, path in tqdm(todo, desc="Rendering", unit="object", disable=not show_progress):
        color = None
        if random_colors:
            rng = np.random.default_rng([seed, sum(map(ord, category)), sum(map(ord, object_id)), len(object_id)])
            color = (*rng.uniform(0.1, 0.9, size=3), 1.0)
        images, cameras, _, _ = render_urdf(path, resolution, color=color, supersample=supersample)
        write_object(root / category / object_id, images, cameras)
    seconds = (time.perf_counter() - start) / max(1, len(todo))
    return {"rendered": len(todo), "skipped": skipped, "seconds_per_object": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="viewfusion-render", description="Render pybullet's meshes in the NMR layout.")
    parser.add_argument("--output_dir", required=True, help="Dataset root to write (resumed if it exists).")
    parser.add_argument("--source", default="all", choices=["random_urdfs", "named", "all"], help="Which models.")
    parser.add_argument("--limit", type=int, default=None, help="At most this many objects per category.")
    parser.add_argument("--resolution", type=int, default=64, help="Image size (default 64, as NMR).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split and of --random_colors.")
    parser.add_argument("--random_colors", action="store_true", help="A random colour per object.")
    parser.add_argument("--supersample", type=int, default=2, help="Render this many times larger, then reduce.")
    args = parser.parse_args(argv)
    if args.resolution < 8 or (args.limit is not None and args.limit < 1):
        parser.error("--resolution must be at least 8 and --limit at least 1")
    summary = render_dataset(args.output_dir, args.source, args.limit, args.resolution, args.seed,
                             args.random_colors, args.supersample)
    print(f"Rendered {summary['rendered']} objects ({summary['seconds_per_object']:.3f} s each), "
          f"{summary['skipped']} already there, into {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
