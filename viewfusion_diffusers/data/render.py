"""`viewfusion-render`: render the meshes that ship with pybullet, or your own, into the NMR dataset layout.

    viewfusion-render --output_dir data/pybullet-64 --source all
    viewfusion-render --meshes my_meshes/ --output_dir data/my-objects --up y

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


def render_body(client, body: int, resolution: int = 64, supersample: int = 2, bounds=None):
    """Render the 24 views of a loaded pybullet body.

    `bounds` (`(lower, upper)` in world units) frames the object; by default pybullet's AABBs of the body's links,
    which a body made of visual shapes only (a mesh file) does not have.

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

    lower, upper = object_bounds(client, body) if bounds is None else map(np.asarray, bounds)
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


MESH_SUFFIXES = (".obj", ".stl")
DEFAULT_MESH_COLOR = (0.7, 0.7, 0.7, 1.0)
DEFAULT_MESH_CATEGORY = "meshes"


class MeshError(ValueError):
    """A mesh file that cannot be rendered: unreadable, empty or degenerate."""


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """Vertices, triangles (polygons fanned) and the diffuse colour of the material most faces use (or None)."""
    vertices, faces, face_materials, material = [], [], [], None
    library = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            vertices.append([float(x) for x in parts[1:4]])
        elif parts[0] == "f":
            # "i", "i/t", "i//n" or "i/t/n"; negative indices count from the end.
            ids = [int(x.split("/")[0]) for x in parts[1:]]
            ids = [i - 1 if i > 0 else len(vertices) + i for i in ids]
            faces += [[ids[0], ids[k], ids[k + 1]] for k in range(1, len(ids) - 1)]
            face_materials += [material] * (len(ids) - 2)
        elif parts[0] == "usemtl" and len(parts) > 1:
            material = parts[1]
        elif parts[0] == "mtllib" and len(parts) > 1 and (path.parent / parts[1]).is_file():
            library.update(read_mtl_colors(path.parent / parts[1]))
    used = [m for m in face_materials if m in library]
    color = library[max(set(used), key=used.count)] if used else None
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3), color


def read_mtl_colors(path: Path) -> dict[str, tuple]:
    """`material name -> (r, g, b, 1)` from the `Kd` lines of an MTL file."""
    colors, name = {}, None
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "newmtl":
            name = parts[1]
        elif len(parts) >= 4 and parts[0] == "Kd" and name is not None:
            colors[name] = (*(float(x) for x in parts[1:4]), 1.0)
    return colors


def read_stl(path: Path) -> tuple[np.ndarray, np.ndarray, None]:
    """Vertices and triangles of a binary or ASCII STL file (STL has no colour)."""
    data = path.read_bytes()
    if len(data) >= 84:
        count = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
        if len(data) == 84 + 50 * count:  # binary: 50 bytes per triangle
            records = np.frombuffer(data, dtype=np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")]),
                                    count=count, offset=84)
            vertices = records["v"].reshape(-1, 3).astype(np.float64)
            return vertices, np.arange(len(vertices)).reshape(-1, 3), None
    text = data.decode("ascii", errors="replace")
    vertices = [[float(x) for x in line.split()[1:4]] for line in text.splitlines() if line.strip().startswith("vertex")]
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    return vertices, np.arange(len(vertices) - len(vertices) % 3).reshape(-1, 3), None


def read_mesh(path) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """`(vertices, triangles, color)` of an OBJ or STL file, checked: raises `MeshError` naming the problem.

    Example:
        ```py
        >>> vertices, triangles, color = read_mesh("chair.obj")
        ```
    """
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(f"{path}: unsupported mesh format {path.suffix!r}; use one of {', '.join(MESH_SUFFIXES)}")
    try:
        vertices, faces, color = (read_obj if path.suffix.lower() == ".obj" else read_stl)(path)
    except (OSError, ValueError, IndexError) as error:
        raise MeshError(f"{path}: cannot read the mesh ({error})") from error
    if len(vertices) == 0 or len(faces) == 0:
        raise MeshError(f"{path}: the mesh is empty")
    if not np.isfinite(vertices).all():
        raise MeshError(f"{path}: the mesh has NaN or infinite vertex coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise MeshError(f"{path}: a face refers to a vertex that does not exist")
    used = vertices[np.unique(faces)]
    extent = used.max(axis=0) - used.min(axis=0)
    if extent.max() <= 0 or extent.min() <= 1e-6 * extent.max():
        raise MeshError(f"{path}: the mesh is degenerate (zero volume: its extent is {extent.round(6).tolist()})")
    return vertices, faces, color


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    with open(path, "w") as f:
        f.writelines(f"v {x:.9g} {y:.9g} {z:.9g}\n" for x, y, z in vertices)
        f.writelines(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces)


# Many mesh files are Y-up; the renderer's world is Z-up. A quarter turn about x maps +y to +z.
UP_ROTATIONS = {"z": np.eye(3), "y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])}


def render_mesh(mesh_path, resolution: int = 64, color=None, supersample: int = 2, up: str = "z"):
    """Render the 24 views of an OBJ or STL file in a fresh pybullet session.

    The colour is `color` (RGBA) if given, else the OBJ's material colour, else light grey. The mesh is rewritten
    as a plain triangle OBJ for pybullet (which shades STL files without normals black), turned Z-up.

    Example:
        ```py
        >>> images, cameras, center, radius = render_mesh("meshes/mugs/mug_01.obj", up="y")
        ```
    """
    import pybullet as p

    if up not in UP_ROTATIONS:
        raise ValueError(f"up must be one of {sorted(UP_ROTATIONS)}, got {up!r}")
    vertices, faces, own_color = read_mesh(mesh_path)
    vertices = vertices @ UP_ROTATIONS[up].T
    color = color or own_color or DEFAULT_MESH_COLOR
    with tempfile.TemporaryDirectory(prefix="viewfusion-mesh-") as folder:
        obj_path = Path(folder) / "mesh.obj"
        write_obj(obj_path, vertices, faces)
        client = p.connect(p.DIRECT)
        try:
            shape = p.createVisualShape(p.GEOM_MESH, fileName=str(obj_path), rgbaColor=list(color), physicsClientId=client)
            if shape < 0:
                raise MeshError(f"{mesh_path}: pybullet could not load the mesh")
            body = p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape, physicsClientId=client)
            used = vertices[np.unique(faces)]
            return render_body(client, body, resolution, supersample, bounds=(used.min(axis=0), used.max(axis=0)))
        finally:
            p.disconnect(client)


def list_mesh_sources(meshes_dir) -> list[tuple[str, str, str]]:
    """`(category, object_id, path)` for the OBJ / STL files under `meshes_dir`.

    Each sub-folder is a category named by the folder; files directly in `meshes_dir` go to the category
    `meshes`. Files deeper down (e.g. ShapeNet's `<category>/<object>/models/model_normalized.obj`) belong to
    the category of their top folder and are named by their path below it.
    """
    root = Path(meshes_dir)
    if not root.is_dir():
        raise ValueError(f"--meshes {root} is not a folder; give the folder that holds your mesh files.")
    objects = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES):
        relative = path.relative_to(root)
        category = relative.parts[0] if len(relative.parts) > 1 else DEFAULT_MESH_CATEGORY
        below = relative.relative_to(category) if len(relative.parts) > 1 else relative
        object_id = "_".join(below.with_suffix("").parts)
        objects.append((category, object_id, str(path)))
    ids = [(c, o) for c, o, _ in objects]
    # "box.obj" and "box.stl" side by side: keep both, told apart by their format.
    objects = [(c, o if ids.count((c, o)) == 1 else f"{o}_{Path(p).suffix[1:].lower()}", p) for c, o, p in objects]
    if not objects:
        raise ValueError(f"No {' or '.join(MESH_SUFFIXES)} files under {root}.")
    return objects


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


def object_color(seed: int, category: str, object_id: str) -> tuple:
    """A random RGBA colour that depends only on the seed and the object's name."""
    rng = np.random.default_rng([seed, sum(map(ord, category)), sum(map(ord, object_id)), len(object_id)])
    return (*rng.uniform(0.1, 0.9, size=3), 1.0)


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
) -> dict:
    """Render pybullet_data models, or a folder of your own meshes, into the NMR layout under `output_dir`; resumable.

    Objects already rendered are skipped, and leftovers of an interrupted run (`.tmp-*` folders) are removed,
    so re-running the same command finishes the job. A mesh that cannot be rendered (unreadable, empty, NaN
    vertices, zero volume) is skipped with a warning naming the file; the split lists hold only the objects
    that were rendered.

    Args:
        output_dir: the dataset root.
        source (`str`): `"random_urdfs"` (1,000 objects), `"named"` (a few named models) or `"all"`; ignored
            when `meshes` is given.
        limit (`int`, *optional*): render only the first `limit` objects of each category.
        resolution (`int`, defaults to 64): image size.
        seed (`int`, defaults to 0): the split and the random colours.
        random_colors (`bool`): give each object a random colour (seeded by `seed` and the object) instead of
            its own.
        meshes (*optional*): a folder of OBJ / STL files (see [`list_mesh_sources`] for how it maps to categories).
        up (`str`, defaults to `"z"`): the up axis of the mesh files, `"z"` or `"y"`.
        color (*optional*): one RGBA colour for every mesh (overrides the files' own colours).

    Returns:
        `dict` with `rendered`, `skipped` (already there), `failed` (a list of `(file, reason)`) and
        `seconds_per_object`.

    Example:
        ```py
        >>> render_dataset("data/pybullet-64", source="random_urdfs", limit=20)
        >>> render_dataset("data/my-objects", meshes="my_meshes/", up="y")
        ```
    """
    import time
    import warnings

    import pybullet as p

    root = Path(output_dir)
    objects = list_mesh_sources(meshes) if meshes is not None else list_sources(source)
    by_category: dict[str, list[tuple[str, str]]] = {}
    for category, object_id, path in objects:
        by_category.setdefault(category, []).append((object_id, path))
    if limit is not None:
        by_category = {c: items[:limit] for c, items in by_category.items()}

    root.mkdir(parents=True, exist_ok=True)
    metadata = {c: {"id": c, "name": CATEGORY_NAMES.get(c, c)} for c in sorted(by_category)}
    write_text_atomically(root / "metadata.yaml", yaml.safe_dump(metadata, sort_keys=True))
    for category in by_category:
        (root / category).mkdir(exist_ok=True)
        for stale in (root / category).glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    todo = [(c, o, p) for c, items in by_category.items() for o, p in items if not (root / c / o).is_dir()]
    skipped = sum(len(items) for items in by_category.values()) - len(todo)
    failed = []
    start = time.perf_counter()
    for category, object_id, path in tqdm(todo, desc="Rendering", unit="object", disable=not show_progress):
        object_color_ = color if color is not None else object_color(seed, category, object_id) if random_colors else None
        try:
            if path.endswith(".urdf"):
                images, cameras, _, _ = render_urdf(path, resolution, color=object_color_, supersample=supersample)
            else:
                images, cameras, _, _ = render_mesh(path, resolution, color=object_color_, supersample=supersample, up=up)
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
            write_text_atomically(root / category / f"{split}.lst", "".join(f"{i}\n" for i in ids))
    return {"rendered": len(todo) - len(failed), "skipped": skipped, "failed": failed, "seconds_per_object": seconds}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `viewfusion-render` options, on a new parser or on `parser` (`viewfusion render` adds them to its own)."""
    parser = parser or argparse.ArgumentParser(prog="viewfusion-render", description="Render meshes in the NMR layout.")
    parser.add_argument("--output_dir", required=True, help="Dataset root to write (resumed if it exists).")
    parser.add_argument("--source", default="all", choices=["random_urdfs", "named", "all"],
                        help="Which of pybullet's models (when --meshes is not given).")
    parser.add_argument("--meshes", default=None,
                        help="A folder of your own OBJ / STL files; each sub-folder is a category.")
    parser.add_argument("--up", default="z", choices=["z", "y"], help="The meshes' up axis (many files are Y-up).")
    parser.add_argument("--color", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                        help="One colour (0..1) for every object, instead of the files' own.")
    parser.add_argument("--limit", type=int, default=None, help="At most this many objects per category.")
    parser.add_argument("--resolution", type=int, default=64, help="Image size (default 64, as NMR).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split and of --random_colors.")
    parser.add_argument("--random_colors", action="store_true", help="A random colour per object.")
    parser.add_argument("--supersample", type=int, default=2, help="Render this many times larger, then reduce.")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run(args, parser)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Render as `args` (from `build_parser`) says; `parser` reports bad values."""
    if args.resolution < 8 or (args.limit is not None and args.limit < 1):
        parser.error("--resolution must be at least 8 and --limit at least 1")
    if args.color is not None and not all(0 <= c <= 1 for c in args.color):
        parser.error("--color takes three numbers between 0 and 1")
    try:
        summary = render_dataset(args.output_dir, args.source, args.limit, args.resolution, args.seed, args.random_colors,
                                 args.supersample, meshes=args.meshes, up=args.up,
                                 color=None if args.color is None else (*args.color, 1.0))
    except ValueError as error:
        parser.error(str(error))
    print(f"Rendered {summary['rendered']} objects ({summary['seconds_per_object']:.3f} s each), "
          f"{summary['skipped']} already there, into {args.output_dir}")
    if summary["failed"]:
        print(f"Skipped {len(summary['failed'])} meshes that could not be rendered:")
        for path, reason in summary["failed"]:
            print(f"  {path}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
