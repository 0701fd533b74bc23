"""What `viewfusion-render` renders: pybullet's models, procedural objects of NMR's categories, or a folder of meshes.

Every source is a list of `(category, object_id, path)`; `path` is a URDF file, a mesh file, or for a procedural
object `procedural:<category>/<seed>` (see [`procedural_source`]).

Example:
    ```py
    >>> list_sources("categories", objects_per_category=2)[:2]
    [('airplane', '0000', 'procedural:airplane/0'), ('airplane', '0001', 'procedural:airplane/1')]
    ```
"""

from pathlib import Path

from ..dependencies import import_optional
from .categories import CATEGORIES
from .meshes import MESH_SUFFIXES


SOURCES = ("random_urdfs", "named", "categories", "all")
DEFAULT_OBJECTS_PER_CATEGORY = 300
DEFAULT_MESH_CATEGORY = "meshes"
PROCEDURAL_SCHEME = "procedural:"

# Named models from pybullet_data that load and render as single objects.
NAMED_MODELS = (
    "duck_vhacd.urdf",
    "teddy_vhacd.urdf",
    "table/table.urdf",
    "lego/lego.urdf",
    "r2d2.urdf",
    "soccerball.urdf",
    "sphere2red.urdf",
    "cube_small.urdf",
    "tray/traybox.urdf",
    "jenga/jenga.urdf",
    "domino/domino.urdf",
    "table_square/table_square.urdf",
    "torus/torus.urdf",
    "samurai.urdf",
)
CATEGORY_NAMES = {
    "random_urdfs": "pybullet random_urdfs blobs",
    "named": "pybullet named models",
    **{category: f"procedural {category} (front towards +x, seen in view 0)" for category in CATEGORIES},
}


def procedural_source(path: str) -> tuple[str, int] | None:
    """`(category, seed)` of a `procedural:<category>/<seed>` path, None for a file path.

    Example:
        ```py
        >>> procedural_source("procedural:chair/12")
        ('chair', 12)
        ```
    """
    if not str(path).startswith(PROCEDURAL_SCHEME):
        return None
    category, seed = str(path)[len(PROCEDURAL_SCHEME) :].split("/")
    return category, int(seed)


def list_sources(source: str, objects_per_category: int = DEFAULT_OBJECTS_PER_CATEGORY) -> list[tuple[str, str, str]]:
    """`(category, object_id, path)` of the objects named by `source`: `random_urdfs`, `named`, `categories`, `all`.

    `categories` is `objects_per_category` procedural objects of each of the 13 categories of
    [`viewfusion_diffusers.data.categories`], object `k` (id `f"{k:04d}"`) made with seed `k`.

    Example:
        ```py
        >>> category, object_id, urdf_path = list_sources("random_urdfs")[0]
        ```
    """
    pybullet_data = import_optional("pybullet_data", "render")

    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; choose one of {', '.join(SOURCES)}.")
    root = Path(pybullet_data.getDataPath())
    objects = []
    if source in ("random_urdfs", "all"):
        objects += [
            ("random_urdfs", d.name, str(d / f"{d.name}.urdf"))
            for d in sorted((root / "random_urdfs").iterdir())
            if (d / f"{d.name}.urdf").is_file()
        ]
    if source in ("named", "all"):
        objects += [("named", Path(name).stem, str(root / name)) for name in NAMED_MODELS if (root / name).is_file()]
    if source in ("categories", "all"):
        if objects_per_category < 1:
            raise ValueError(f"objects_per_category must be at least 1, got {objects_per_category}")
        objects += [
            (c, f"{k:04d}", f"{PROCEDURAL_SCHEME}{c}/{k}") for c in CATEGORIES for k in range(objects_per_category)
        ]
    if not objects:
        raise ValueError(f"The source {source!r} is empty in this installation of pybullet_data ({root}).")
    return objects


def list_mesh_sources(meshes_dir) -> list[tuple[str, str, str]]:
    """`(category, object_id, path)` for the OBJ / STL files under `meshes_dir`.

    Each sub-folder is a category named by the folder; files directly in `meshes_dir` go to the category
    `meshes`. Files deeper down (e.g. ShapeNet's `<category>/<object>/models/model_normalized.obj`) belong to
    the category of their top folder and are named by their path below it.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.categories import make_object
        >>> from viewfusion_diffusers.data.meshes import write_obj_parts
        >>> write_obj_parts("my_meshes/lamps/lamp_01.obj", make_object("lamp", 1))  # and lamp_01.mtl beside it
        >>> write_obj_parts("my_meshes/chair.obj", make_object("chair", 3))
        >>> list_mesh_sources("my_meshes/")
        [('meshes', 'chair', 'my_meshes/chair.obj'), ('lamps', 'lamp_01', 'my_meshes/lamps/lamp_01.obj')]
        ```
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
