"""`viewfusion-render` on a handful of pybullet objects."""

import subprocess
import sys

import numpy as np
import PIL.Image
import yaml

from viewfusion_diffusers.data.render import render_dataset, render_urdf, list_sources


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
    assert {f"{kind}_{k}" for kind in kinds for k in range(24)} == set(cameras.files)


def test_cameras_project_the_centre_to_the_image_centre_and_the_box_inside():
    path = list_sources("random_urdfs")[3][2]
    images, cameras, center, radius = render_urdf(path, resolution=64)
    for k in range(24):
        np.testing.assert_allclose(cameras[f"world_mat_inv_{k}"] @ cameras[f"world_mat_{k}"], np.eye(4), atol=1e-9)
        np.testing.assert_allclose(project(cameras, k, np.zeros(3)), [0, 0], atol=1e-9)  # the object was centred
        # The object's pixels lie inside the projected bounding sphere, which lies inside the image.
        silhouette = np.argwhere((images[k] < 250).any(axis=-1))
        assert len(silhouette) > 0
        assert silhouette.min() >= 0 and silhouette.max() <= 63
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * radius / np.sqrt(3)
    for k in (0, 7, 13):
        uv = np.array([project(cameras, k, c) for c in corners])
        assert np.abs(uv).max() <= 1.0


def test_view_geometry_matches_the_image():
    """A point right of centre in camera x projects right of centre in the image (u grows with column)."""
    path = list_sources("random_urdfs")[0][2]
    images, cameras, _, radius = render_urdf(path, resolution=64)
    for k in (0, 6, 12):
        mask = (images[k] < 250).any(axis=-1)
        rows, cols = np.nonzero(mask)
        centre_uv = np.array([cols.mean() + 0.5, rows.mean() + 0.5]) / 32 - 1
        assert np.abs(centre_uv).max() < 0.35  # the silhouette's centroid lies near the projected centre


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
    result = subprocess.run([sys.executable, "-m", "viewfusion_diffusers.data.render", "--output_dir", str(tmp_path),
                             "--source", "named", "--limit", "2", "--resolution", "32", "--random_colors"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Rendered 2 objects" in result.stdout and "Rendering" in result.stderr
    assert len(list(tmp_path.glob("named/*/image/0023.png"))) == 2
