"""The code is formatted and linted as pyproject.toml configures ruff (119 columns, sorted imports)."""

import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing_to_fix():
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, f"run `ruff check --fix .`:\n{result.stdout}{result.stderr}"


def test_the_code_is_formatted():
    result = ruff("format", "--check", "--no-cache", ".")
    assert result.returncode == 0, f"run `ruff format .`:\n{result.stdout}{result.stderr}"
