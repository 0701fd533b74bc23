"""`viewfusion-render`: render pybullet's models, procedural objects of NMR's categories, or your own meshes,
into the NMR dataset layout.

    viewfusion-render --output_dir data/pybullet-64 --source all
    viewfusion-render --output_dir data/pybullet-64 --source categories --export_meshes data/category-meshes
    viewfusion-render --meshes my_meshes/ --output_dir data/my-objects --up y

Output (the layout of NMR, as used by DVR, pixelNeRF and ViewFusion)::

    <root>/metadata.yaml                          category -> {id, name}
    <root>/<category>/{train,val,test}.lst        object ids, one a line (seeded split, 80 / 10 / 10)
    <root>/<category>/<object>/image/0000.png .. 0023.png
    <root>/<category>/<object>/cameras.npz        world_mat_k, camera_mat_k and their _inv_ variants

Views: view `k` at azimuth `15 k` degrees, elevation 30 degrees, white background, the object framed by its
bounding sphere (see [`viewfusion_diffusers.data.cameras`] for the camera conventions). The light is fixed in
the world (it does not follow the camera), with a low ambient and a strong diffuse term, so a view and the one
opposite it are shaded differently: the only cue from which a pose-free model can tell where azimuth 0 is on
objects that have no canonical front. The procedural categories do have one: their front faces +x, view 0
(see [`viewfusion_diffusers.data.categories`]).

Module layout: `cameras` (camera maths), `meshes` (OBJ / STL files), `sources` (what to render),
`categories` (the procedural objects); this module renders with pybullet, writes the dataset and is the CLI.

Rendering uses pybullet's CPU renderer (``ER_TINY_RENDERER``), 2x supersampled then reduced, and is
deterministic: the same inputs give byte-identical PNGs.
"""

import argparse
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import yaml
from tqdm.auto import tqdm

from ..cli_help import DefaultsHelpFormatter
from ..constants import NUM_VIEWS
from ..dependencies import import_optional
from ..file_utils import atomic_directory, atomic_write
from .cameras import FOV_DEGREES, bounding_sphere, camera_distance, nmr_cameras
from .categories import make_object
from .geometry import parts_bounds
from .meshes import UP_ROTATIONS, MeshError, parts_by_color, read_mesh, read_mesh_parts, write_obj, write_obj_parts
from .sources import (
    CATEGORY_NAMES,
    DEFAULT_OBJECTS_PER_CATEGORY,
    SOURCES,
    list_mesh_sources,
    list_sources,
    procedural_source,
)


__all__ = [  # the rendering API, and the names of other modules it renders with
    "CATEGORY_NAMES",
    "FOV_DEGREES",
    "NUM_VIEWS",
    "UP_ROTATIONS",
    "MeshError",
    "list_mesh_sources",
    "list_sources",
    "main",
    "object_bounds",
    "object_color",
    "read_mesh",
    "render_body",
    "render_dataset",
    "render_mesh",
    "render_object",
    "render_parts",
    "render_urdf",
    "split_object_ids",
    "write_obj",
    "write_object",
]

# Light from a fixed direction in the world (front-left, above), low ambient, strong diffuse.
LIGHT_DIRECTION = (1.0, -0.6, 1.2)
LIGHT_AMBIENT, LIGHT_DIFFUSE, LIGHT_SPECULAR = 0.25, 0.85, 0.05
DEFAULT_MESH_COLOR = (0.7, 0.7, 0.7, 1.0)


def object_bounds(client, body: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds of all links of a body (pybullet's visual AABBs).

    Example:
        ```py
        >>> import pybullet as p
        >>> import pybullet_data
        >>> client = p.connect(p.DIRECT)
        >>> p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
        >>> lower, upper = object_bounds(client, p.loadURDF("duck_vhacd.urdf", physicsClientId=client))
        >>> (upper - lower).round(3)  # the duck's size in world units
        array([0.091, 0.085, 0.066])
        >>> p.disconnect(client)
        ```
    """
    p = import_optional("pybullet", "render")

    boxes = [
        p.getAABB(body, link, physicsClientId=client)
        for link in range(-1, p.getNumJoints(body, physicsClientId=client))
    ]
    lower = np.min([b[0] for b in boxes], axis=0)
    upper = np.max([b[1] for b in boxes], axis=0)
    return lower, upper


def render_body(client, body, resolution: int = 64, supersample: int = 2, bounds=None):
    """Render the 24 views of a loaded pybullet body (or of several bodies, given as a list, framed together).

    `bounds` (`(lower, upper)` in world units) frames the object; by default pybullet's AABBs of the body's links,
    which a body made of visual shapes only (a mesh file) does not have.

    Returns:
        `(images, cameras, center, radius)`: `images` is `(24, resolution, resolution, 3)` uint8, `cameras` the
        `cameras.npz` dictionary, `center` and `radius` the bounding sphere used for framing (world units).

    Example:
        ```py
        >>> import pybullet as p
        >>> import pybullet_data
        >>> client = p.connect(p.DIRECT)
        >>> p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
        >>> body = p.loadURDF("duck_vhacd.urdf", physicsClientId=client)
        >>> images, cameras, center, radius = render_body(client, body, resolution=32)
        >>> images.shape, cameras["world_mat_0"].shape, round(radius, 3)
        ((24, 32, 32, 3), (4, 4), 0.07)
        >>> p.disconnect(client)
        ```
    """
    p = import_optional("pybullet", "render")

    bodies = [body] if isinstance(body, int) else list(body)
    if bounds is None:
        boxes = [object_bounds(client, b) for b in bodies]
        bounds = (np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0))
    try:
        center, radius = bounding_sphere(*bounds)
    except ValueError as error:
        raise ValueError(f"body {body}: {error}") from None
    # Move the object so its bounding-box centre is at the origin.
    for b in bodies:
        position, orientation = p.getBasePositionAndOrientation(b, physicsClientId=client)
        p.resetBasePositionAndOrientation(b, np.asarray(position) - center, orientation, physicsClientId=client)

    distance = camera_distance(radius)
    size = resolution * supersample
    projection = p.computeProjectionMatrixFOV(FOV_DEGREES, 1.0, distance - radius * 1.01, distance + radius * 1.01)
    cameras = nmr_cameras(distance)
    images = []
    for k in range(NUM_VIEWS):
        # pybullet wants an OpenGL view matrix (camera looks down -z, y up), column-major.
        view = np.diag([1.0, -1.0, -1.0, 1.0]) @ cameras[f"world_mat_{k}"]
        _, _, rgba, _, segmentation = p.getCameraImage(
            size,
            size,
            viewMatrix=view.T.reshape(-1).tolist(),
            projectionMatrix=projection,
            renderer=p.ER_TINY_RENDERER,
            lightDirection=LIGHT_DIRECTION,
            lightAmbientCoeff=LIGHT_AMBIENT,
            lightDiffuseCoeff=LIGHT_DIFFUSE,
            lightSpecularCoeff=LIGHT_SPECULAR,
            shadow=0,
            physicsClientId=client,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[..., :3].copy()
        rgb[np.asarray(segmentation).reshape(size, size) < 0] = 255
        image = (
            PIL.Image.fromarray(rgb).resize((resolution, resolution), PIL.Image.BOX)
            if supersample > 1
            else PIL.Image.fromarray(rgb)
        )
        images.append(np.asarray(image))
    return np.stack(images), cameras, center, radius


def render_urdf(urdf_path: str, resolution: int = 64, color=None, supersample: int = 2):
    """Render the 24 views of one URDF file in a fresh pybullet session (`color`: RGBA to override the URDF's).

    Example:
        ```py
        >>> images, cameras, center, radius = render_urdf(list_sources("named")[0][2], resolution=32)
        ```
    """
    p = import_optional("pybullet", "render")

    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(urdf_path), useFixedBase=True, physicsClientId=client)
        if color is not None:
            for link in range(-1, p.getNumJoints(body, physicsClientId=client)):
                p.changeVisualShape(body, link, rgbaColor=list(color), physicsClientId=client)
        return render_body(client, body, resolution, supersample)
    finally:
        p.disconnect(client)


def render_parts(parts, resolution: int = 64, supersample: int = 2, name: str = "mesh"):
    """Render the 24 views of a multi-coloured mesh, given as parts `(vertices, triangles, rgba)`, Z-up.

    Parts of one colour are joined (as [`read_mesh_parts`] reads an OBJ back), each colour becomes one pybullet
    body, and the bounding box of all of them frames the views. `name` names the object in errors.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.categories import make_object
        >>> images, cameras, center, radius = render_parts(make_object("chair", 3), resolution=32)
        ```
    """
    p = import_optional("pybullet", "render")

    vertices, faces, colors, offset = [], [], [], 0
    for part_vertices, part_faces, rgba, *_ in parts:
        vertices.append(np.asarray(part_vertices, dtype=np.float64))
        faces.append(np.asarray(part_faces, dtype=np.int64) + offset)
        colors += [None if rgba is None else tuple(rgba)] * len(part_faces)
        offset += len(part_vertices)
    if not vertices:
        raise MeshError(f"{name}: no parts to render")
    groups = parts_by_color(np.concatenate(vertices), np.concatenate(faces), colors)
    with tempfile.TemporaryDirectory(prefix="viewfusion-mesh-") as folder:
        client = p.connect(p.DIRECT)
        try:
            bodies = []
            for k, (group_vertices, group_faces, color) in enumerate(groups):
                obj_path = Path(folder) / f"part_{k}.obj"
                write_obj(obj_path, group_vertices, group_faces)
                shape = p.createVisualShape(
                    p.GEOM_MESH,
                    fileName=str(obj_path),
                    rgbaColor=list(color or DEFAULT_MESH_COLOR),
                    physicsClientId=client,
                )
                if shape < 0:
                    raise MeshError(f"{name}: pybullet could not load the mesh")
                bodies.append(p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape, physicsClientId=client))
            # The box of the vertices faces use: a mesh file's stray vertices do not shrink the object in the frame.
            return render_body(client, bodies, resolution, supersample, bounds=parts_bounds(groups))
        finally:
            p.disconnect(client)


def render_mesh(mesh_path, resolution: int = 64, color=None, supersample: int = 2, up: str = "z"):
    """Render the 24 views of an OBJ or STL file in a fresh pybullet session.

    Each material of an OBJ keeps its colour (faces without one take the colour most faces use); `color`
    (RGBA) paints the whole mesh instead; a mesh with no colour is light grey. The mesh is rewritten as plain
    triangle OBJs for pybullet (which shades STL files without normals black), turned Z-up.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.categories import make_object
        >>> from viewfusion_diffusers.data.meshes import write_obj_parts
        >>> write_obj_parts("meshes/lamps/lamp_01.obj", make_object("lamp", 1))  # Z-up, with its colours
        >>> images, cameras, center, radius = render_mesh("meshes/lamps/lamp_01.obj", resolution=32)  # Y-up: up="y"
        >>> images.shape
        (24, 32, 32, 3)
        ```
    """
    if up not in UP_ROTATIONS:
        raise ValueError(f"up must be one of {sorted(UP_ROTATIONS)}, got {up!r}")
    parts = [
        (vertices @ UP_ROTATIONS[up].T, faces, color or own_color)
        for vertices, faces, own_color in read_mesh_parts(mesh_path)
    ]
    return render_parts(parts, resolution, supersample, name=str(mesh_path))


def render_object(category: str, seed: int, resolution: int = 64, supersample: int = 2, color=None):
    """Render the 24 views of the procedural object `make_object(category, seed)` (`color`: one RGBA for all).

    Example:
        ```py
        >>> images, cameras, center, radius = render_object("car", 7, resolution=32)
        >>> images.shape  # view 0 looks at the car's front
        (24, 32, 32, 3)
        ```
    """
    parts = make_object(category, seed)
    if color is not None:
        parts = [(v, f, tuple(color)) for v, f, *_ in parts]
    return render_parts(parts, resolution, supersample, name=f"{category} {seed}")


def split_object_ids(object_ids: list[str], seed: int) -> dict[str, list[str]]:
    """A seeded 80 / 10 / 10 train / val / test split (at least one object in each when there are three or more).

    Example:
        ```py
        >>> {split: len(ids) for split, ids in split_object_ids([f"{k:03d}" for k in range(10)], seed=0).items()}
        {'test': 1, 'val': 1, 'train': 8}
        ```
    """
    ids = sorted(object_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    num_val = num_test = max(1, round(0.1 * len(ids))) if len(ids) >= 3 else 0
    shuffled = [ids[i] for i in order]
    return {
        "test": sorted(shuffled[:num_test]),
        "val": sorted(shuffled[num_test : num_test + num_val]),
        "train": sorted(shuffled[num_test + num_val :]),
    }


def write_object(object_dir: Path, images: np.ndarray, cameras: dict) -> None:
    """Write one object's `image/0000.png ..` and `cameras.npz` into `object_dir`: all of it appears, or nothing.

    Example:
        ```py
        >>> images, cameras, _, _ = render_object("car", 7, resolution=32)
        >>> write_object(Path("data/cars/02958343/car_0007"), images, cameras)
        ```
    """
    with atomic_directory(object_dir) as staging:
        (staging / "image").mkdir()
        for k, image in enumerate(images):
            PIL.Image.fromarray(image).save(staging / "image" / f"{k:04d}.png", format="PNG", optimize=False)
        np.savez(staging / "cameras.npz", **cameras)


def object_color(seed: int, category: str, object_id: str) -> tuple:
    """A random RGBA colour that depends only on the seed and the object's name.

    Example:
        ```py
        >>> object_color(0, "mugs", "mug_01") == object_color(0, "mugs", "mug_01")
        True
        ```
    """
    rng = np.random.default_rng([seed, sum(map(ord, category)), sum(map(ord, object_id)), len(object_id)])
    return (*rng.uniform(0.1, 0.9, size=3), 1.0)


def export_procedural_meshes(objects, export_dir) -> int:
    """Write each procedural object of `objects` (`(category, object_id, path)`) as `<category>/<object_id>.obj`
    (+ `.mtl` with its part colours) under `export_dir`; files already there are kept. Returns how many it wrote.

    `viewfusion-render --meshes export_dir` renders them into the same images as `--source categories`.

    Example:
        ```py
        >>> export_procedural_meshes(list_sources("categories", objects_per_category=2), "category-meshes")
        26
        ```
    """
    written = 0
    for category, object_id, path in objects:
        procedural = procedural_source(path)
        target = Path(export_dir) / category / f"{object_id}.obj"
        if procedural is None or target.is_file():
            continue
        write_obj_parts(target, make_object(*procedural))
        written += 1
    return written


def render_dataset(
    output_dir: str | os.PathLike,
    source: str = "random_urdfs",
    limit: int | None = None,
    resolution: int = 64,
    seed: int = 0,
    random_colors: bool = False,
    supersample: int = 2,
    show_progress: bool = True,
    meshes: str | os.PathLike | None = None,
    up: str = "z",
    color: tuple | None = None,
    objects_per_category: int = DEFAULT_OBJECTS_PER_CATEGORY,
    export_meshes: str | os.PathLike | None = None,
) -> dict:
    """Render pybullet_data models, procedural objects or a folder of your own meshes into the NMR layout; resumable.

    Objects already rendered are skipped, and leftovers of an interrupted run (`.tmp-*` folders) are removed,
    so re-running the same command finishes the job. A mesh that cannot be rendered (unreadable, empty, NaN
    vertices, zero volume) is skipped with a warning naming the file; the split lists hold only the objects
    that were rendered. Categories already in `output_dir` that this call does not render are left as they
    are, and stay in `metadata.yaml`.

    Args:
        output_dir: the dataset root.
        source (`str`): `"random_urdfs"` (1,000 objects), `"named"` (a few named models), `"categories"`
            (procedural objects of 13 NMR categories, front towards +x) or `"all"`; ignored when `meshes` is given.
        limit (`int`, *optional*): render only the first `limit` objects of each category.
        resolution (`int`, defaults to 64): image size.
        seed (`int`, defaults to 0): the split and the random colours.
        random_colors (`bool`): give each object a random colour (seeded by `seed` and the object) instead of
            its own.
        meshes (*optional*): a folder of OBJ / STL files (see [`list_mesh_sources`] for how it maps to categories).
        up (`str`, defaults to `"z"`): the up axis of the mesh files, `"z"` or `"y"`.
        color (*optional*): one RGBA colour for every mesh (overrides the files' own colours).
        objects_per_category (`int`, defaults to 300): how many procedural objects per category (seeds 0, 1, ...).
        export_meshes (*optional*): also write each procedural object as OBJ + MTL under this folder
            (`<category>/<object_id>.obj`), for `--meshes` or any mesh viewer.

    Returns:
        `dict` with `rendered`, `skipped` (already there), `failed` (a list of `(file, reason)`),
        `seconds_per_object` and `exported` (mesh files written).

    Example:
        ```py
        >>> summary = render_dataset("data/pybullet-64", source="random_urdfs", limit=12, show_progress=False)
        >>> summary["rendered"] + summary["skipped"]  # objects already there are skipped: the call resumes
        12
        >>> summary = render_dataset("data/pybullet-64", source="categories", objects_per_category=1)
        >>> from viewfusion_diffusers.data.categories import make_object
        >>> from viewfusion_diffusers.data.meshes import write_obj_parts
        >>> os.makedirs("my_meshes/mugs")
        >>> write_obj_parts("my_meshes/mugs/mug_01.obj", make_object("lamp", 1))  # any OBJ or STL files
        >>> render_dataset("data/my-objects", meshes="my_meshes/", up="z")["rendered"]
        1
        ```
    """
    p = import_optional("pybullet", "render")

    root = Path(output_dir)
    objects = list_mesh_sources(meshes) if meshes is not None else list_sources(source, objects_per_category)
    by_category: dict[str, list[tuple[str, str]]] = {}
    for category, object_id, path in objects:
        by_category.setdefault(category, []).append((object_id, path))
    if limit is not None:
        by_category = {c: items[:limit] for c, items in by_category.items()}
    selected = [(c, o, path) for c, items in by_category.items() for o, path in items]
    exported = 0
    if export_meshes is not None:
        if not any(procedural_source(path) for _, _, path in selected):
            raise ValueError("--export_meshes writes the procedural objects; use it with --source categories or all.")
        exported = export_procedural_meshes(selected, export_meshes)

    root.mkdir(parents=True, exist_ok=True)
    metadata_path = root / "metadata.yaml"
    metadata = (yaml.safe_load(metadata_path.read_text()) or {}) if metadata_path.is_file() else {}
    metadata.update({c: {"id": c, "name": CATEGORY_NAMES.get(c, c)} for c in by_category})
    with atomic_write(metadata_path, "w") as f:
        yaml.safe_dump(dict(sorted(metadata.items())), f, sort_keys=True)
    for category in by_category:
        (root / category).mkdir(exist_ok=True)
        for stale in (root / category).glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    todo = [(c, o, path) for c, o, path in selected if not (root / c / o).is_dir()]
    skipped = len(selected) - len(todo)
    failed = []
    start = time.perf_counter()
    for category, object_id, path in tqdm(todo, desc="Rendering", unit="object", disable=not show_progress):
        object_color_ = (
            color if color is not None else object_color(seed, category, object_id) if random_colors else None
        )
        try:
            if procedural_source(path) is not None:
                images, cameras, _, _ = render_object(
                    *procedural_source(path), resolution, supersample, color=object_color_
                )
            elif path.endswith(".urdf"):
                images, cameras, _, _ = render_urdf(path, resolution, color=object_color_, supersample=supersample)
            else:
                images, cameras, _, _ = render_mesh(
                    path, resolution, color=object_color_, supersample=supersample, up=up
                )
        except (ValueError, p.error) as error:
            warnings.warn(f"Skipped {path}: {error}", stacklevel=2)
            failed.append((path, str(error)))
            continue
        write_object(root / category / object_id, images, cameras)
    seconds = (time.perf_counter() - start) / max(1, len(todo) - len(failed))

    # The split lists hold the objects on disk, so a skipped mesh never appears in them.
    for category, items in by_category.items():
        rendered = [object_id for object_id, _ in items if (root / category / object_id).is_dir()]
        for split, ids in split_object_ids(rendered, seed).items():
            with atomic_write(root / category / f"{split}.lst", "w") as f:
                f.write("".join(f"{i}\n" for i in ids))
    return {
        "rendered": len(todo) - len(failed),
        "skipped": skipped,
        "failed": failed,
        "seconds_per_object": seconds,
        "exported": exported,
    }


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `viewfusion-render` options, on a new parser or on `parser` (`viewfusion render` adds them to its own).

    Example:
        ```py
        >>> build_parser().parse_args(["--output_dir", "data/pybullet-64", "--source", "categories"]).source
        'categories'
        ```
    """
    parser = parser or argparse.ArgumentParser(
        prog="viewfusion-render", description="Render meshes in the NMR layout.", formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--output_dir", required=True, help="Dataset root to write (resumed if it exists).")
    parser.add_argument(
        "--source",
        default="all",
        choices=list(SOURCES),
        help="What to render when --meshes is not given: pybullet's models (random_urdfs, named), "
        "procedural objects of 13 NMR categories (categories), or all of them.",
    )
    parser.add_argument(
        "--objects_per_category",
        type=int,
        default=DEFAULT_OBJECTS_PER_CATEGORY,
        help=f"Procedural objects per category (default {DEFAULT_OBJECTS_PER_CATEGORY}); object k is made "
        "with seed k, whatever --seed (which shuffles the split) says.",
    )
    parser.add_argument(
        "--export_meshes",
        default=None,
        metavar="DIR",
        help="Also write each procedural object as DIR/<category>/<object_id>.obj (+ .mtl), "
        "which --meshes DIR renders alike.",
    )
    parser.add_argument(
        "--meshes", default=None, help="A folder of your own OBJ / STL files; each sub-folder is a category."
    )
    parser.add_argument("--up", default="z", choices=["z", "y"], help="The meshes' up axis (many files are Y-up).")
    parser.add_argument(
        "--color",
        type=float,
        nargs=3,
        default=None,
        metavar=("R", "G", "B"),
        help="One colour (0..1) for every object, instead of the files' own.",
    )
    parser.add_argument("--limit", type=int, default=None, help="At most this many objects per category.")
    parser.add_argument("--resolution", type=int, default=64, help="Image size (default 64, as NMR).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split and of --random_colors.")
    parser.add_argument("--random_colors", action="store_true", help="A random colour per object.")
    parser.add_argument("--supersample", type=int, default=2, help="Render this many times larger, then reduce.")
    return parser


def main(argv=None) -> int:
    """The `viewfusion-render` command (see the module docstring).

    Example:
        ```py
        >>> main(["--output_dir", "data/tiny", "--source", "categories", "--limit", "2", "--resolution", "16"])
        Rendered 26 objects (... s each), 0 already there, into data/tiny
        0
        ```
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    return run(args, parser)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Render as `args` (from `build_parser`) says; `parser` reports bad values.

    Example:
        ```py
        >>> parser = build_parser()
        >>> args = parser.parse_args(["--output_dir", "data/tiny", "--source", "categories", "--limit", "1",
        ...                           "--resolution", "32"])
        >>> run(args, parser)
        Rendered 13 objects (... s each), 0 already there, into data/tiny
        0
        >>> run(args, parser)  # again: everything is there already
        Rendered 0 objects (... s each), 13 already there, into data/tiny
        0
        ```
    """
    if args.resolution < 8 or (args.limit is not None and args.limit < 1) or args.objects_per_category < 1:
        parser.error("--resolution must be at least 8, and --limit and --objects_per_category at least 1")
    if args.color is not None and not all(0 <= c <= 1 for c in args.color):
        parser.error("--color takes three numbers between 0 and 1")
    try:
        summary = render_dataset(
            args.output_dir,
            args.source,
            args.limit,
            args.resolution,
            args.seed,
            args.random_colors,
            args.supersample,
            meshes=args.meshes,
            up=args.up,
            color=None if args.color is None else (*args.color, 1.0),
            objects_per_category=args.objects_per_category,
            export_meshes=args.export_meshes,
        )
    except ValueError as error:
        parser.error(str(error))
    print(
        f"Rendered {summary['rendered']} objects ({summary['seconds_per_object']:.3f} s each), "
        f"{summary['skipped']} already there, into {args.output_dir}"
    )
    if args.export_meshes is not None:
        print(f"Wrote {summary['exported']} procedural meshes into {args.export_meshes}")
    if summary["failed"]:
        print(f"Skipped {len(summary['failed'])} meshes that could not be rendered:")
        for path, reason in summary["failed"]:
            print(f"  {path}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
