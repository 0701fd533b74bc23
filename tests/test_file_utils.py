import os
import stat

import numpy as np
import PIL.Image
import pytest

from viewfusion_diffusers.file_utils import atomic_directory, atomic_write, current_umask, save_image


def test_atomic_write_gives_the_usual_permissions_and_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out" / "a.txt"
    with atomic_write(target, "w") as f:
        f.write("hello")
    assert target.read_text() == "hello"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_current_umask_reads_without_changing_it():
    previous = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    finally:
        os.umask(previous)


def test_atomic_directory_appears_whole_with_the_usual_permissions_or_not_at_all(tmp_path):
    target = tmp_path / "objects" / "000"
    with atomic_directory(target) as staging:
        (staging / "a.txt").write_text("a")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "a"
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~current_umask()
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "objects" / "001") as staging:
            (staging / "a.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.parent.iterdir()) == ["000"]


def test_save_image_writes_the_format_its_name_names_and_refuses_unknown_ones(tmp_path):
    pixels = np.full((4, 4, 3), 200, np.uint8)
    save_image(pixels, tmp_path / "a.jpg")
    with PIL.Image.open(tmp_path / "a.jpg") as image:
        assert image.format == "JPEG"
    with pytest.raises(ValueError, match="unknown image extension '.jpgx'; use one of"):
        save_image(pixels, tmp_path / "a.jpgx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]


@pytest.mark.parametrize("extension", [".wmf", ".h5", ".bufr", ".msp", ".xbm"])
def test_formats_pil_names_but_cannot_write_in_rgb_are_refused_before_writing(tmp_path, extension):
    with pytest.raises(ValueError, match=f"PIL cannot write RGB images as '\\{extension}'; use one of .apng"):
        save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / f"a{extension}")
    assert list(tmp_path.iterdir()) == []
