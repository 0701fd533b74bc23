"""Reading and writing mesh files: OBJ (with MTL colours, one part per material) and STL (binary or ASCII).

Example:
    ```py
    >>> from viewfusion_diffusers.data.categories import make_object
    >>> write_obj_parts("chair.obj", make_object("chair", 3))  # chair.obj and chair.mtl, a material per part
    >>> vertices, triangles, color = read_mesh("chair.obj")
    >>> vertices.shape, triangles.shape, color  # color: the material most faces use
    ((168, 3), (280, 3), (0.752, 0.758, 0.788, 1.0))
    >>> for vertices, triangles, color in read_mesh_parts("chair.obj"):  # one part per material colour
    ...     print(len(triangles), color)
    12 (0.174, 0.307, 0.593, 1.0)
    268 (0.752, 0.758, 0.788, 1.0)
    ```
"""

from pathlib import Path

import numpy as np

from ..file_utils import atomic_write


MESH_SUFFIXES = (".obj", ".stl")

# Many mesh files are Y-up; the renderer's world is Z-up. A quarter turn about x maps +y to +z.
UP_ROTATIONS = {"z": np.eye(3), "y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])}


class MeshError(ValueError):
    """A mesh file that cannot be rendered: unreadable, empty or degenerate."""


def _read_obj_faces(path: Path) -> tuple[np.ndarray, np.ndarray, list]:
    """Vertices, triangles (polygons fanned) and each triangle's material colour (None where it has none)."""
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
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    return vertices, np.asarray(faces, dtype=np.int64).reshape(-1, 3), [library.get(m) for m in face_materials]


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    r"""Vertices, triangles (polygons fanned) and the diffuse colour of the material most faces use (or None).

    Example:
        ```py
        >>> _ = Path("square.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n")  # one quad
        >>> vertices, faces, color = read_obj("square.obj")
        >>> vertices.shape, faces.tolist(), color  # the quad fanned into two triangles; no material
        ((4, 3), [[0, 1, 2], [0, 2, 3]], None)
        ```
    """
    vertices, faces, colors = _read_obj_faces(Path(path))
    used = [c for c in colors if c is not None]
    return vertices, faces, (max(set(used), key=used.count) if used else None)


def read_mtl_colors(path: Path) -> dict[str, tuple]:
    r"""`material name -> (r, g, b, 1)` from the `Kd` lines of an MTL file.

    Example:
        ```py
        >>> _ = Path("mug.mtl").write_text("newmtl body\nKa 0 0 0\nKd 0.8 0.2 0.2\n\nnewmtl handle\nKd 0.1 0.1 0.1\n")
        >>> read_mtl_colors("mug.mtl")
        {'body': (0.8, 0.2, 0.2, 1.0), 'handle': (0.1, 0.1, 0.1, 1.0)}
        ```
    """
    colors, name = {}, None
    for line in Path(path).read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "newmtl":
            name = parts[1]
        elif len(parts) >= 4 and parts[0] == "Kd" and name is not None:
            colors[name] = (*(float(x) for x in parts[1:4]), 1.0)
    return colors


def read_stl(path: Path) -> tuple[np.ndarray, np.ndarray, None]:
    r"""Vertices and triangles of a binary or ASCII STL file (STL has no colour).

    Example:
        ```py
        >>> _ = Path("triangle.stl").write_text(  # ASCII STL: one facet
        ...     "solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
        ...     "endloop\nendfacet\nendsolid t\n")
        >>> vertices, faces, color = read_stl("triangle.stl")
        >>> vertices.shape, faces.tolist(), color
        ((3, 3), [[0, 1, 2]], None)
        ```
    """
    data = Path(path).read_bytes()
    if len(data) >= 84:
        count = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
        if len(data) == 84 + 50 * count:  # binary: 50 bytes per triangle
            records = np.frombuffer(
                data,
                dtype=np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")]),
                count=count,
                offset=84,
            )
            vertices = records["v"].reshape(-1, 3).astype(np.float64)
            return vertices, np.arange(len(vertices)).reshape(-1, 3), None
    text = data.decode("ascii", errors="replace")
    vertices = [
        [float(x) for x in line.split()[1:4]] for line in text.splitlines() if line.strip().startswith("vertex")
    ]
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    return vertices, np.arange(len(vertices) - len(vertices) % 3).reshape(-1, 3), None


def _check(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
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


def _suffix(path: Path) -> str:
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(f"{path}: unsupported mesh format {path.suffix!r}; use one of {', '.join(MESH_SUFFIXES)}")
    return path.suffix.lower()


def read_mesh(path) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """`(vertices, triangles, color)` of an OBJ or STL file, checked: raises `MeshError` naming the problem.

    `color` is the diffuse colour of the material most of an OBJ's faces use, or None.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.categories import make_object
        >>> write_obj_parts("chair.obj", make_object("chair", 3))
        >>> vertices, triangles, color = read_mesh("chair.obj")
        >>> vertices.shape, triangles.shape, color
        ((168, 3), (280, 3), (0.752, 0.758, 0.788, 1.0))
        >>> write_obj("flat.obj", np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))
        >>> read_mesh("flat.obj")
        Traceback (most recent call last):
        ...
        viewfusion_diffusers.data.meshes.MeshError: flat.obj: the mesh is degenerate
        (zero volume: its extent is [1.0, 1.0, 0.0])
        ```
    """
    path = Path(path)
    reader = read_obj if _suffix(path) == ".obj" else read_stl
    try:
        vertices, faces, color = reader(path)
    except (OSError, ValueError, IndexError) as error:
        raise MeshError(f"{path}: cannot read the mesh ({error})") from error
    _check(path, vertices, faces)
    return vertices, faces, color


def read_mesh_parts(path) -> list[tuple[np.ndarray, np.ndarray, tuple | None]]:
    """An OBJ file's parts, one `(vertices, triangles, color)` per material colour (an STL file: one part).

    The whole mesh is checked as [`read_mesh`] does. Faces without a material join the part of the colour
    most faces use, so an OBJ with one material is one part. Each part keeps only its own vertices, in file order.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.categories import make_object
        >>> write_obj_parts("car/0001.obj", make_object("car", 1))  # 17 parts in 7 colours
        >>> for vertices, triangles, color in read_mesh_parts("car/0001.obj"):  # body paint, windows, tyres, ...
        ...     print(len(triangles), color)
        36 (0.399, 0.131, 0.342, 1.0)
        12 (0.12, 0.16, 0.22, 1.0)
        288 (0.06, 0.06, 0.06, 1.0)
        192 (0.622, 0.592, 0.622, 1.0)
        24 (0.98, 0.95, 0.75, 1.0)
        24 (0.85, 0.05, 0.05, 1.0)
        24 (0.114, 0.077, 0.059, 1.0)
        ```
    """
    path = Path(path)
    if _suffix(path) == ".stl":
        return [read_mesh(path)]
    try:
        vertices, faces, colors = _read_obj_faces(path)
    except (OSError, ValueError, IndexError) as error:
        raise MeshError(f"{path}: cannot read the mesh ({error})") from error
    _check(path, vertices, faces)
    return parts_by_color(vertices, faces, colors)


def parts_by_color(
    vertices: np.ndarray, faces: np.ndarray, colors: list
) -> list[tuple[np.ndarray, np.ndarray, tuple | None]]:
    """Split a mesh into one `(vertices, triangles, color)` part per face colour, in order of first use.

    Faces whose colour is None join the colour most faces use. Each part keeps only its own vertices, in order.

    Example:
        ```py
        >>> parts = parts_by_color(np.eye(3), np.array([[0, 1, 2]]), [(1.0, 0.0, 0.0, 1.0)])
        ```
    """
    used = [c for c in colors if c is not None]
    main = max(set(used), key=used.count) if used else None
    colors = [main if c is None else c for c in colors]
    parts = []
    for color in dict.fromkeys(colors):
        part_faces = faces[np.array([c == color for c in colors])]
        kept, remapped = np.unique(part_faces, return_inverse=True)
        parts.append((vertices[kept], remapped.reshape(-1, 3).astype(np.int64), color))
    return parts


def write_obj(path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """A plain triangle OBJ (no normals, no material).

    Example:
        ```py
        >>> write_obj("triangle.obj", np.eye(3), np.array([[0, 1, 2]]))
        ```
    """
    with atomic_write(path, "w") as f:
        f.writelines(f"v {x:.9g} {y:.9g} {z:.9g}\n" for x, y, z in vertices)
        f.writelines(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces)


def write_obj_parts(path, parts) -> None:
    """One OBJ with a named group and a material per part, and its MTL beside it (`<stem>.mtl`, the colours).

    `parts` is a list of `(vertices, triangles, rgba[, name])`. [`read_mesh_parts`] reads the file back into
    the same parts (parts of one colour joined, as the renderer joins them), so `viewfusion-render --meshes`
    renders it as the generated object.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.categories import make_object
        >>> write_obj_parts("chair_0003.obj", make_object("chair", 3))
        ```
    """
    path = Path(path)
    mtl_path = path.with_suffix(".mtl")
    with atomic_write(mtl_path, "w") as f:
        for k, (_, _, rgba, *_) in enumerate(parts):
            f.write(f"newmtl part_{k}\nKa 0 0 0\nKd {rgba[0]:.6g} {rgba[1]:.6g} {rgba[2]:.6g}\nKs 0 0 0\nd 1\n\n")
    with atomic_write(path, "w") as f:
        f.write(f"mtllib {mtl_path.name}\n")
        offset = 0
        for k, (vertices, faces, _, *name) in enumerate(parts):
            f.write(f"o {name[0] if name else 'part'}_{k}\nusemtl part_{k}\n")
            f.writelines(f"v {x:.9g} {y:.9g} {z:.9g}\n" for x, y, z in vertices)
            f.writelines(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in np.asarray(faces) + offset)
            offset += len(vertices)
