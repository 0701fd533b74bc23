"""The help format of every command line of the package: each option's help ends with its default."""

import argparse


__all__ = ["DefaultsHelpFormatter"]


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends `(default: X)` to an option's help unless the help already says its default; flags that are off
    unless given, and options without a default (None), say nothing more.

    Example:
        ```py
        >>> parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
        >>> _ = parser.add_argument("--steps", type=int, default=50, help="Denoising steps.")
        >>> "Denoising steps. (default: 50)" in parser.format_help()
        True
        ```
    """

    def _get_help_string(self, action):
        help_text = action.help or ""
        default = action.default
        if (
            "default" in help_text
            or not action.option_strings
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            and action.nargs == 0
        ):
            return help_text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{help_text} (default: {str(shown).replace('%', '%%')})".lstrip()
