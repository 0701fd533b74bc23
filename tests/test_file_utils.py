import os
import stat

import pytest

from viewfusion_diffusers.file_utils import atomic_write


def test_atomic_write_gives_the_usual_permissions_and_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out" / "a.txt"
    with atomic_write(target, "w") as f:
        f.write("hello")
    assert target.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]
