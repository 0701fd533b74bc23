import sys

import pytest

from viewfusion_diffusers.dependencies import import_optional


def test_a_missing_optional_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pybullet", None)  # what an environment without it looks like to import
    with pytest.raises(ImportError, match=r"pip install 'viewfusion-diffusers\[render\]'"):
        import_optional("pybullet", "render")
    assert import_optional("json", "render") is sys.modules["json"]
