"""Every command line's --help: each option has help text and shows its default; no help names an option its command
lacks."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from viewfusion_diffusers.cli import build_parser


ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"demo": ROOT / "examples" / "gradio_space" / "app.py", "train": ROOT / "training" / "train_viewfusion.py"}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def subcommands():
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def help_of(command: str) -> str:
    if command in SCRIPTS:
        arguments = [sys.executable, str(SCRIPTS[command]), "--help"]
    else:
        arguments = [sys.executable, "-m", "viewfusion_diffusers.cli", command, "--help"]
    result = subprocess.run(arguments, capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def shown_default(action) -> str | None:
    """What the help should show as the default, or None where there is nothing to show."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or (isinstance(default, bool) and action.nargs == 0):
        return None
    return " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)


def option_help(text: str, option: str) -> str:
    """The help paragraph of one option in argparse's output (up to the next option)."""
    match = re.search(rf"^  {re.escape(option)}\b.*?(?=^  -|\Z)", text, flags=re.S | re.M)
    assert match, f"{option} is missing from the help"
    return " ".join(match.group(0).split())


@pytest.mark.parametrize("command", ["generate", "orbit", "eval", "render", "convert"])
def test_every_option_has_help_and_shows_its_default(command):
    text = help_of(command)
    for action in subcommands()[command]._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"viewfusion {command} {action.option_strings[0]} has no help text"
        if shown_default(action) is not None:  # shown by the formatter, or in the help's own words
            paragraph = option_help(text, action.option_strings[0])
            assert "default" in paragraph, (command, paragraph)


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_scripts_show_their_defaults_too(script):
    text = help_of(script)
    options = re.findall(r"^  (--[a-z0-9_-]+)", text, flags=re.M)
    assert options
    for option in options:
        paragraph = option_help(text, option)
        assert len(paragraph.split()) > 2, f"{script} {option} has no help text"


def test_no_help_names_an_option_its_command_lacks():
    for command, parser in subcommands().items():
        text = re.sub(r"-\n\s*", "-", help_of(command))  # argparse wraps lines after hyphens, too
        known = {s for a in parser._actions for s in a.option_strings}
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*[a-z0-9])", text))
        assert named <= known, (command, sorted(named - known))


def test_the_readmes_commands_use_only_options_their_help_lists_and_its_defaults_agree():
    readme = (ROOT / "README.md").read_text()
    commands = subcommands()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, flags=re.S)).replace("\\\n", " ")
    seen = 0
    for line in blocks.splitlines():
        words = line.split("#")[0].split()
        if len(words) > 1 and words[0] == "viewfusion" and words[1] in commands:
            known = {s for a in commands[words[1]]._actions for s in a.option_strings}
            named = {w for w in words[2:] if w.startswith("--")}
            assert named <= known, (line, sorted(named - known))
            seen += 1
    assert seen >= 5
    # The prose of "## Command line" states these defaults.
    prose = " ".join(readme.split("## Command line", 1)[1].split())
    generate = {a.dest: a.default for a in commands["generate"]._actions}
    assert f"`--scheduler {generate['scheduler']} --steps {generate['steps']}` unless told otherwise" in prose
    listed = re.search(r"`viewfusion ([a-z |]+)`", prose).group(1)
    assert {c.strip() for c in listed.split("|")} == set(commands)
