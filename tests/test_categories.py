"""The procedural categories: sound meshes, deterministic, every front towards +x, rendered in the NMR layout."""

import subprocess
import sys

import numpy as np
import pytest
import yaml

from viewfusion_diffusers.data import NMRDataset
from viewfusion_diffusers.data.categories import CATEGORIES, make_object
from viewfusion_diffusers.data.geometry import parts_bounds, signed_volume, triangulate_polygon
from viewfusion_diffusers.data.meshes import read_mesh_parts, write_obj_parts
from viewfusion_diffusers.data.render import render_dataset


SEEDS = range(20)


def by_name(parts, name):
    selected = [p for p in parts if p.name == name]
    return np.concatenate([p.vertices for p in selected]) if selected else None


def centroid(parts, name):
    return by_name(parts, name).mean(axis=0)


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_part_is_a_closed_outward_mesh_inside_the_framing_sphere(category):
    for seed in SEEDS:
        parts = make_object(category, seed)
        assert len(parts) >= 3, (category, seed)
        for part in parts:
            assert part.vertices.ndim == 2 and part.vertices.shape[1] == 3 and np.isfinite(part.vertices).all()
            assert part.faces.shape[1] == 3 and part.faces.min() >= 0 and part.faces.max() < len(part.vertices)
            assert len(np.unique(part.faces)) == len(part.vertices), (category, seed, part.name)  # no stray vertices
            assert signed_volume(part.vertices, part.faces) > 0, (category, seed, part.name)  # closed, faces outwards
            assert len(part.rgba) == 4 and all(0 <= c <= 1 for c in part.rgba)
        lower, upper = parts_bounds(parts)
        assert (upper - lower).min() > 0
        # The renderer frames by the bounding sphere: centre of the box, half its diagonal.
        framed = (np.concatenate([p.vertices for p in parts]) - (lower + upper) / 2) / (
            np.linalg.norm(upper - lower) / 2
        )
        assert np.linalg.norm(framed, axis=1).max() <= 1 + 1e-9
        assert len({p.rgba for p in parts}) >= 2, (category, seed)  # a colour scheme, not one colour


def test_same_seed_same_bytes_and_different_seeds_differ(tmp_path):
    for category in CATEGORIES:
        a, b, c = (tmp_path / k / f"{category}.obj" for k in "abc")
        for path, seed in ((a, 5), (b, 5), (c, 6)):
            write_obj_parts(path, make_object(category, seed))
        assert a.read_bytes() == b.read_bytes(), category
        assert a.read_bytes() != c.read_bytes(), category
        parts = read_mesh_parts(a)
        assert len(parts) == len({p.rgba for p in make_object(category, 5)})  # one part per colour comes back


def test_fronts_face_plus_x():
    """Each category's front is at +x: every check fails for an object mirrored in x or turned a quarter."""
    for seed in SEEDS:
        o = {c: make_object(c, seed) for c in CATEGORIES}
        length = np.ptp(by_name(o["car"], "body"), axis=0)
        assert length[0] > 1.8 * length[1]  # length along x
        assert centroid(o["car"], "headlight")[0] > 0.45 * length[0] > -centroid(o["car"], "headlight")[0]
        assert centroid(o["car"], "taillight")[0] < -0.45 * length[0]
        assert centroid(o["car"], "windows")[0] < centroid(o["car"], "headlight")[0] - 0.2 * length[0]

        fuselage = by_name(o["airplane"], "fuselage")
        assert centroid(o["airplane"], "fin")[0] < fuselage[:, 0].mean() - 0.25 * np.ptp(fuselage[:, 0])  # tail at -x
        assert centroid(o["airplane"], "cockpit")[0] > 0.3 * np.ptp(fuselage[:, 0])  # nose at +x
        wing = by_name(o["airplane"], "wing")
        assert np.ptp(wing[:, 1]) > np.ptp(wing[:, 0])  # wings span y

        for seat_category in ("chair", "sofa", "bench"):
            seat = by_name(o[seat_category], "seat" if seat_category != "sofa" else "cushion")
            back = by_name(o[seat_category], "back")
            if back is None:  # some benches have no backrest
                assert seat_category == "bench"
                continue
            assert back.mean(axis=0)[0] < seat.mean(axis=0)[0] - 0.15 * np.ptp(seat[:, 0]), (seat_category, seed)
            assert back[:, 2].max() > seat[:, 2].max() + 0.1, (seat_category, seed)

        assert by_name(o["cabinet"], "handle")[:, 0].min() > by_name(o["cabinet"], "body")[:, 0].max()
        assert by_name(o["loudspeaker"], "driver")[:, 0].min() >= by_name(o["loudspeaker"], "body")[:, 0].max()

        screen, bezel = by_name(o["display"], "screen"), by_name(o["display"], "bezel")
        assert screen[:, 0].min() >= bezel[:, 0].max() - 1e-9  # the screen is on the +x face ...
        assert np.argmin(np.ptp(bezel, axis=0)) == 0  # ... of a panel thin along x
        phone = o["telephone"]
        assert centroid(phone, "screen")[0] > centroid(phone, "body")[0] > centroid(phone, "camera")[0]

        if by_name(o["lamp"], "head") is not None:  # articulated lamps reach towards +x
            assert centroid(o["lamp"], "head")[0] > centroid(o["lamp"], "base")[0] + 0.1

        rifle = np.concatenate([p.vertices for p in o["rifle"]])
        assert by_name(o["rifle"], "barrel")[:, 0].max() == rifle[:, 0].max() and centroid(o["rifle"], "stock")[0] < 0

        top = by_name(o["table"], "top")
        assert np.ptp(top[:, 1]) >= np.ptp(top[:, 0]) - 1e-9  # the long side faces the front

        hull = by_name(o["watercraft"], "hull")
        span = np.ptp(hull[:, 0])
        bow, stern = hull[hull[:, 0] > hull[:, 0].max() - 0.1 * span], hull[hull[:, 0] < hull[:, 0].min() + 0.1 * span]
        assert np.abs(bow[:, 1]).max() < 0.6 * np.abs(stern[:, 1]).max()  # pointed bow at +x, wide stern at -x


def test_triangulation_of_a_concave_polygon_covers_its_area():
    polygon = np.array([(0, 0), (3, 0), (3, 2), (2, 2), (2, 1), (1, 1), (1, 2), (0, 2.0)])  # a U, area 5
    triangles = triangulate_polygon(polygon)
    areas = [np.linalg.det(np.stack([polygon[b] - polygon[a], polygon[c] - polygon[a]])) / 2 for a, b, c in triangles]
    assert min(areas) > 0 and np.isclose(sum(areas), 5.0)
    with pytest.raises(ValueError, match="zero area"):
        triangulate_polygon([(0, 0), (1, 1), (2, 2)])


def test_bad_category_and_seed_are_named():
    with pytest.raises(ValueError, match="Unknown category 'spaceship'.*airplane"):
        make_object("spaceship", 0)
    with pytest.raises(ValueError, match="non-negative"):
        make_object("car", -1)


def test_render_source_and_exported_meshes_render_alike(tmp_path):
    """`--source categories --export_meshes`, then `--meshes` on the export: the same layout and the same PNG bytes."""
    generated, exported, meshes = tmp_path / "generated", tmp_path / "exported", tmp_path / "meshes"
    (generated).mkdir()
    (generated / "metadata.yaml").write_text(yaml.safe_dump({"named": {"id": "named", "name": "kept"}}))
    command = [sys.executable, "-m", "viewfusion_diffusers.data.render", "--resolution", "16"]
    result = subprocess.run(
        command
        + [
            "--output_dir",
            str(generated),
            "--source",
            "categories",
            "--objects_per_category",
            "2",
            "--export_meshes",
            str(meshes),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"Rendered {2 * len(CATEGORIES)} objects" in result.stdout
        and f"Wrote {2 * len(CATEGORIES)} procedural meshes" in result.stdout
    )
    metadata = yaml.safe_load((generated / "metadata.yaml").read_text())
    assert set(metadata) == {"named", *CATEGORIES} and metadata["named"]["name"] == "kept"  # other categories stay
    assert sorted(p.name for p in (meshes / "chair").iterdir()) == ["0000.mtl", "0000.obj", "0001.mtl", "0001.obj"]
    dataset = NMRDataset(generated, split="train", categories=list(CATEGORIES))
    assert len(dataset) == 2 * len(CATEGORIES)
    assert dataset.load_views(0).shape == (24, 3, 16, 16)

    result = subprocess.run(
        command + ["--output_dir", str(exported), "--meshes", str(meshes)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    pngs = sorted(p.relative_to(generated) for p in generated.rglob("*.png"))
    assert len(pngs) == 24 * 2 * len(CATEGORIES)
    assert all((generated / p).read_bytes() == (exported / p).read_bytes() for p in pngs)


def test_export_needs_procedural_objects(tmp_path):
    with pytest.raises(ValueError, match="--source categories"):
        render_dataset(
            tmp_path / "data", source="named", limit=1, export_meshes=tmp_path / "meshes", show_progress=False
        )
