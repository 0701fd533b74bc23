"""The README's command blocks and its Python snippet, run as written, with tiny sizes where the real run is long.

Every `bash` block of README.md is split into commands; each runs in a real subprocess, in a scratch folder that
holds a copy of `examples/` and links to `pipelines/` and `training/`, so that what the commands write (data,
runs, outputs, figures) stays out of the checkout. Only the sizes change (objects, steps, views), through the
rewrites below; a command the table does not know runs as it stands. Commands that install software, start a
server, stand for a family of commands (`...`) or need a GPU are listed by why they are skipped.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# Why a command is not run here, by what it starts with or contains.
SKIPPED = {
    "python3 -m venv": "makes the environment the tests already run in",
    "pip install": "installs software (the test environment is that install)",
    "apt-get install": "installs software",
    "python -m pytest": "is this test suite",
    "python examples/gradio_space/app.py": "starts a server (tests/test_space.py drives the app)",
}

# Where the real command is long: the same command, smaller. Applied in order, to every command they match.
TINY_SIZES = [
    (r"--num_objects \d+", "--num_objects 1"),
    (r"--num_views( \d+)+", "--num_views 1 2"),
    (r"--max_train_steps \d+", "--max_train_steps 2"),
    (r"--checkpointing_steps \d+", "--checkpointing_steps 2"),
    (r"--validation_steps \d+", "--validation_steps 0"),
    (r"--count \d+", "--count 5"),
    (r"--train_batch_size \d+", "--train_batch_size 2"),
    (r"--source all", "--source all --limit 3 --objects_per_category 3"),
]
# The authors' published checkpoint cannot be fetched here: a checkpoint of their format made with their code stands
# in.
ORIGINAL_FIXTURE = ROOT / "tests" / "data" / "original-viewfusion" / "tiny"
TINY_SIZES.append(
    (
        r"--checkpoint bronemos/view-fusion/best_model_all.pt",
        f"--checkpoint {ORIGINAL_FIXTURE / 'best_model_all.pt'} --config {ORIGINAL_FIXTURE / 'config.yaml'}",
    )
)
# Sampling commands: 2 denoising steps instead of 50, 2 orbit frames instead of 24.
APPENDED = [
    (r"^viewfusion (generate|orbit) ", " --steps 2"),
    (r"^viewfusion orbit ", " --step-degrees 180"),
    (r"^viewfusion eval ", " --num_inference_steps 2"),
]


def bash_commands(markdown: str) -> list[str]:
    """The commands of every ```bash block: continuation lines joined, comments and blank lines dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", command).strip()
            if command and not command.startswith("#"):
                commands.append(re.sub(r"\s+", " ", command))
    return commands


def skip_reason(command: str) -> str | None:
    for start, reason in SKIPPED.items():
        if command.startswith(start):
            return reason
    if " ..." in command:
        return "stands for a family of commands"
    if ("--multi_gpu" in command or "--mixed_precision bf16" in command) and not torch.cuda.is_available():
        return "needs a GPU"
    return None


def tiny(command: str) -> str:
    for pattern, replacement in TINY_SIZES:
        command = re.sub(pattern, replacement, command)
    for pattern, suffix in APPENDED:
        if re.search(pattern, command):
            command += suffix
    return command


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("results"))
    for name in ("pipelines", "training"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def run(command, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


def test_the_readme_shows_its_commands_and_every_rewrite_still_applies():
    commands = bash_commands(README)
    assert any(c.startswith("viewfusion generate") for c in commands)
    assert "python -m pytest -q" in commands
    for pattern, _ in TINY_SIZES:
        assert any(re.search(pattern, c) for c in commands), f"no README command has {pattern!r}: drop the rewrite"


def test_every_readme_command_runs(scratch):
    ran, failures = [], []
    for command in bash_commands(README):
        if skip_reason(command) is not None:
            continue
        result = run(tiny(command), scratch)
        ran.append(command)
        if result.returncode != 0:
            failures.append(f"$ {tiny(command)}\n{result.stderr[-3000:]}")
    assert not failures, "\n\n".join(failures)
    assert any(c.startswith("accelerate launch") for c in ran) and any(c.startswith("viewfusion eval") for c in ran)
    # What the commands promise to write is there.
    for path in (
        "outputs/novel.png",
        "outputs/orbit.gif",
        "runs/my-model/model_index.json",
        "eval/my-model/results.md",
        "outputs/viewfusion-nmr/model_index.json",
        "outputs/nmr-90.png",
    ):
        assert (scratch / path).is_file(), path


def test_the_python_snippet_runs_as_pasted(tmp_path):
    """In a folder like a fresh clone (no `outputs/` yet), where the snippets are pasted."""
    snippets = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert snippets, "the README has no Python snippet"
    for name in ("examples", "pipelines", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    for snippet in snippets:
        script = tmp_path / "snippet.py"
        script.write_text(snippet.replace("num_inference_steps=50", "num_inference_steps=2"))
        result = run(f"{sys.executable} {script}", tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
