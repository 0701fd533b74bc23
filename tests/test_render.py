"""`viewfusion-render` on a handful of pybullet objects."""

import subprocess
import sys

import numpy as np
import PIL.Image
import yaml

from viewfusion_diffusers.data.render import list_sources, render_dataset, render_urdf


def project(cameras, k, point):
    homogeneous = cameras[f"camera_mat_{k}"] @ cameras[f"world_mat_{k}"] @ np.append(point, 1.0)
    return homogeneous[:2] / homogeneous[2]


def test_layout_lists_and_metadata(rendered_dataset):
    root = rendered_dataset
    assert yaml.safe_load((root / "metadata.yaml").read_text())["random_urdfs"]["id"] == "random_urdfs"
    splits = {s: (root / "random_urdfs" / f"{s}.lst").read_text().split() for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert sorted(sum(splits.values(), [])) == [f"{i:03d}" for i in range(10)]
    for object_id in sum(splits.values(), []):
        images = sorted((root / "random_urdfs" / object_id / "image").iterdir())
        assert [p.name for p in images] == [f"{k:04d}.png" for k in range(24)]
        with PIL.Image.open(images[0]) as image:
            assert image.size == (32, 32) and image.mode == "RGB"
        cameras = np.load(root / "random_urdfs" / object_id / "cameras.npz")
        kinds = ("world_mat", "camera_mat", "world_mat_inv", "camera_mat_inv")
        assert {f"{kind}_{k}" for kind in kinds for k in range(24)} == set(cameras.files), object_id


def test_cameras_project_the_centre_to_the_image_centre_and_the_box_inside():
    path = list_sources("random_urdfs")[3][2]
    images, cameras, center, radius = render_urdf(path, resolution=64)
    for k in range(24):
        np.testing.assert_allclose(cameras[f"world_mat_inv_{k}"] @ cameras[f"world_mat_{k}"], np.eye(4), atol=1e-9)
        np.testing.assert_allclose(project(cameras, k, np.zeros(3)), [0, 0], atol=1e-9)  # the object was centred
        # The object's pixels lie inside the projected bounding sphere, the circle |(u, v)| <= 1 that the image
        # just holds: nothing touches the border, and no pixel centre lies more than a pixel (1/32) outside it.
        mask = (images[k] < 250).any(axis=-1)
        assert mask.sum() > 20
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        rows, cols = np.nonzero(mask)
        uv = np.stack([cols + 0.5, rows + 0.5], axis=1) / 32 - 1
        assert np.linalg.norm(uv, axis=1).max() <= 1 + 1 / 32
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * radius / np.sqrt(3)
    for k in (0, 7, 13):
        uv = np.array([project(cameras, k, c) for c in corners])
        assert np.abs(uv).max() <= 1.0


def test_view_geometry_matches_the_image():
    """A marker's pixels sit where the cameras project it: u grows with the column, v with the row.

    A grey block with a red cube at its +y end and a blue one on top: in view 0 (camera on +x) red is right
    of centre, blue above it; a mirrored or swapped image axis puts them elsewhere.
    """
    from viewfusion_diffusers.data.geometry import box_mesh
    from viewfusion_diffusers.data.render import render_parts

    red_at, blue_at = np.array([0.0, 0.9, 0.0]), np.array([0.0, -0.4, 0.6])
    parts = [
        (*box_mesh((0, 0, 0), (1.2, 1.6, 0.6)), (0.6, 0.6, 0.6, 1)),
        (*box_mesh(red_at, (0.3,) * 3), (1, 0, 0, 1)),
        (*box_mesh(blue_at, (0.3,) * 3), (0, 0, 1, 1)),
    ]
    images, cameras, center, _ = render_parts(parts, resolution=64)
    for k in (0, 5, 6, 12, 18):
        image = images[k].astype(int)
        for channel, point in ((0, red_at), (2, blue_at)):
            others = [c for c in range(3) if c != channel]
            mask = (image[..., channel] > 60) & (image[..., others].max(axis=-1) < 30)
            if (k, channel) == (18, 0):
                continue  # hidden behind the block, seen from -y
            assert mask.sum() > 5, (k, channel)
            rows, cols = np.nonzero(mask)
            u, v = project(cameras, k, point - center)
            np.testing.assert_allclose(
                [cols.mean() + 0.5, rows.mean() + 0.5], [(u + 1) * 32, (v + 1) * 32], atol=3.5, err_msg=f"view {k}"
            )
    red_u = project(cameras, 0, red_at - center)[0]
    blue_v = project(cameras, 0, blue_at - center)[1]
    assert red_u > 0.3 and blue_v < -0.2  # view 0: +y to the right, +z up


def test_background_is_white_and_opposite_views_differ(rendered_dataset):
    image_dir = rendered_dataset / "random_urdfs" / "000" / "image"
    front = np.asarray(PIL.Image.open(image_dir / "0000.png")).astype(float)
    back = np.asarray(PIL.Image.open(image_dir / "0012.png")).astype(float)
    for corner in (front[0, 0], front[-1, -1], back[0, -1]):
        assert (corner == 255).all()
    assert np.abs(front - back).mean() > 2.0


def test_same_seed_gives_identical_bytes(tmp_path):
    render_dataset(tmp_path / "a", limit=2, resolution=32, show_progress=False)
    render_dataset(tmp_path / "b", limit=2, resolution=32, show_progress=False)
    for path in (tmp_path / "a").rglob("*.png"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_resume_skips_finished_objects_and_clears_leftovers(tmp_path):
    root = tmp_path / "data"
    assert render_dataset(root, limit=3, resolution=32, show_progress=False)["rendered"] == 3
    # An interrupted run: one object's half-written temp folder, another object never written.
    (root / "random_urdfs" / ".tmp-001-abc" / "image").mkdir(parents=True)
    for path in (root / "random_urdfs" / "002").rglob("*"):
        path.unlink() if path.is_file() else None
    for directory in sorted((root / "random_urdfs" / "002").rglob("*"), reverse=True):
        directory.rmdir()
    (root / "random_urdfs" / "002").rmdir()
    summary = render_dataset(root, limit=3, resolution=32, show_progress=False)
    assert summary["rendered"] == 1 and summary["skipped"] == 2
    assert not list((root / "random_urdfs").glob(".tmp-*"))
    assert len(list((root / "random_urdfs" / "002" / "image").iterdir())) == 24


def test_command_line_in_a_subprocess(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewfusion_diffusers.data.render",
            "--output_dir",
            str(tmp_path),
            "--source",
            "named",
            "--limit",
            "2",
            "--resolution",
            "32",
            "--random_colors",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Rendered 2 objects" in result.stdout and "Rendering" in result.stderr
    assert len(list(tmp_path.glob("named/*/image/0023.png"))) == 2
