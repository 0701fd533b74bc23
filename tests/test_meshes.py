"""`viewfusion-render --meshes`: the user's own OBJ / STL files, written by the test, into the NMR layout."""

import math
import struct
import subprocess
import sys

import numpy as np
import pytest

from viewfusion_diffusers.data import MeshError, NMRDataset, read_mesh, render_mesh


def box(size=(1.0, 0.6, 0.4)):
    x, y, z = (s / 2 for s in size)
    vertices = np.array(
        [[-x, -y, -z], [x, -y, -z], [x, y, -z], [-x, y, -z], [-x, -y, z], [x, -y, z], [x, y, z], [-x, y, z]]
    )
    quads = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
    return vertices, quads


def cylinder(radius=0.4, height=1.2, segments=24):
    angles = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    vertices = np.concatenate(
        [np.c_[ring, np.full(segments, -height / 2)], np.c_[ring, np.full(segments, height / 2)]]
    )
    sides = [(k, (k + 1) % segments, segments + (k + 1) % segments, segments + k) for k in range(segments)]
    caps = [tuple(range(segments - 1, -1, -1)), tuple(range(segments, 2 * segments))]
    return vertices, sides + caps


def l_shape():
    # Two boxes joined: a long foot along x and an upright at its end.
    foot_v, foot_f = box((1.2, 0.4, 0.3))
    post_v, post_f = box((0.3, 0.4, 0.9))
    post_v = post_v + [0.45, 0.0, 0.6]
    return np.concatenate([foot_v, post_v]), foot_f + [tuple(i + 8 for i in f) for f in post_f]


def write_obj(path, vertices, faces, color=None):
    lines = []
    if color is not None:
        (path.parent / f"{path.stem}.mtl").write_text(f"newmtl paint\nKd {color[0]} {color[1]} {color[2]}\n")
        lines += [f"mtllib {path.stem}.mtl", "usemtl paint"]
    lines += [f"v {x} {y} {z}" for x, y, z in vertices]
    lines += ["f " + " ".join(str(i + 1) for i in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")


def write_binary_stl(path, vertices, faces):
    triangles = [(face[0], face[k], face[k + 1]) for face in faces for k in range(1, len(face) - 1)]
    with open(path, "wb") as f:
        f.write(b"solid but binary".ljust(80, b" ") + struct.pack("<I", len(triangles)))
        for triangle in triangles:
            f.write(
                struct.pack("<3f", 0, 0, 0) + b"".join(struct.pack("<3f", *vertices[i]) for i in triangle) + b"\0\0"
            )


@pytest.fixture
def mesh_folder(tmp_path):
    root = tmp_path / "meshes"
    (root / "furniture").mkdir(parents=True)
    write_obj(root / "box.obj", *box(), color=(0.8, 0.2, 0.1))
    write_binary_stl(root / "cylinder.stl", *cylinder())
    write_obj(root / "furniture" / "l_shape.obj", *l_shape())
    write_binary_stl(root / "furniture" / "l_shape.stl", *l_shape())
    write_obj(root / "furniture" / "plate.obj", np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]]), [(0, 1, 2)])  # flat
    (root / "furniture" / "broken.obj").write_text("v 0 0 nan\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n")
    (root / "notes.txt").write_text("not a mesh")
    return root


def test_read_mesh_checks_the_geometry(mesh_folder):
    vertices, faces, color = read_mesh(mesh_folder / "box.obj")
    assert vertices.shape == (8, 3) and faces.shape == (12, 3) and color == (0.8, 0.2, 0.1, 1.0)
    vertices, faces, color = read_mesh(mesh_folder / "cylinder.stl")
    assert faces.shape == (2 * 24 + 2 * 22, 3) and color is None
    with pytest.raises(MeshError, match="NaN"):
        read_mesh(mesh_folder / "furniture" / "broken.obj")
    with pytest.raises(MeshError, match="zero volume"):
        read_mesh(mesh_folder / "furniture" / "plate.obj")
    (mesh_folder / "empty.stl").write_bytes(b"")
    with pytest.raises(MeshError, match="empty"):
        read_mesh(mesh_folder / "empty.stl")


def test_render_meshes_into_the_nmr_layout(mesh_folder, tmp_path):
    out = tmp_path / "data"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewfusion_diffusers.data.render",
            "--meshes",
            str(mesh_folder),
            "--output_dir",
            str(out),
            "--resolution",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Skipped 2 meshes" in result.stdout and "broken.obj" in result.stdout and "plate.obj" in result.stdout
    assert sorted(p.name for p in (out / "meshes").iterdir() if p.is_dir()) == ["box", "cylinder"]
    assert sorted(p.name for p in (out / "furniture").iterdir() if p.is_dir()) == ["l_shape_obj", "l_shape_stl"]
    assert not list(out.rglob(".tmp-*"))
    listed = {
        c: sum(((out / c / f"{s}.lst").read_text().split() for s in ("train", "val", "test")), [])
        for c in ("meshes", "furniture")
    }
    assert sorted(listed["furniture"]) == ["l_shape_obj", "l_shape_stl"]  # the skipped meshes are in no split
    dataset = NMRDataset(out, split="train", categories=["meshes", "furniture"])
    views = dataset.load_views(0)
    assert views.shape == (24, 3, 32, 32)
    # Each view shows the object, centred: the projected bounding-box centre is the image centre.
    cameras = np.load(out / "meshes" / "box" / "cameras.npz")
    point = cameras["camera_mat_5"] @ cameras["world_mat_5"] @ np.array([0, 0, 0, 1.0])
    np.testing.assert_allclose(point[:2] / point[2], 0, atol=1e-9)
    # The OBJ's material colour is used; the STL (no colour) is grey; both are shaded, not black.
    box_rgb = np.asarray(NMRDataset(out, split="train", categories=["meshes"]).load_views(0, [0]), dtype=float)
    for folder in ("box", "cylinder"):
        from PIL import Image

        image = np.asarray(Image.open(out / "meshes" / folder / "image" / "0000.png"), dtype=float)
        pixels = image[(image < 250).any(axis=-1)]
        assert len(pixels) > 20 and pixels.mean() > 40, folder
        if folder == "box":
            assert pixels[:, 0].mean() > 2 * pixels[:, 2].mean()  # red
        else:
            assert np.ptp(pixels.mean(axis=0)) < 10  # grey
    assert box_rgb.shape == (1, 3, 32, 32)
    # The same mesh as OBJ and STL renders alike.
    obj = np.asarray(Image.open(out / "furniture" / "l_shape_obj" / "image" / "0003.png"), dtype=float)
    stl = np.asarray(Image.open(out / "furniture" / "l_shape_stl" / "image" / "0003.png"), dtype=float)
    assert np.abs(obj - stl).mean() < 2


def test_y_up_mesh_renders_upright(tmp_path):
    """The L-shape written Y-up (its post along +y) and rendered with up="y" looks like it written Z-up."""
    vertices, faces = l_shape()  # the post stands up along +z
    write_obj(tmp_path / "z_up.obj", vertices, faces)
    write_obj(
        tmp_path / "y_up.obj", vertices[:, [0, 2, 1]] * [1, 1, -1], faces
    )  # (x, y, z) -> (x, z, -y): post along +y
    z_up, *_ = render_mesh(tmp_path / "z_up.obj", resolution=32)
    y_up, *_ = render_mesh(tmp_path / "y_up.obj", resolution=32, up="y")
    y_up_as_z, *_ = render_mesh(tmp_path / "y_up.obj", resolution=32, up="z")
    assert np.abs(z_up.astype(float) - y_up).mean() < 1
    assert np.abs(z_up.astype(float) - y_up_as_z).mean() > 5
    # Upright: from azimuth 90 (camera on +y, +x to the image's left) the post, at +x, rises above the foot.
    rows, cols = np.nonzero((y_up[6] < 250).any(axis=-1))
    assert rows[cols == cols.min()].min() < rows[cols == cols.max()].min() - 5


def test_bad_meshes_folder_gives_a_clear_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewfusion_diffusers.data.render",
            "--meshes",
            str(tmp_path / "nope"),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "is not a folder" in result.stderr
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewfusion_diffusers.data.render",
            "--meshes",
            str(tmp_path / "empty"),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "No .obj or .stl files" in result.stderr
