"""The command-line flags that `xmlconv convert` (converter/cli.py) and `xmlconv submit`
(client/cli.py) share: one flag per conversion option, built from optionspec, and --version.

Each option's flag stores under the option's own name, None when it is not given (the library's
or the server's default applies). --force-list takes element names comma-separated and/or the
flag repeated (`--force-list item,tag`, `--force-list item --force-list tag`), and the older
space-separated form (`--force-list item tag`) too. That form swallows the command's positional
argument in `--force-list item orders.xml`; an OptionParser gives it back once parsing ends (the
last value of the one use that took several), and asks for it only when several such uses leave
it unclear. So the positional is declared nargs="?", and its absence is reported here.
"""

from __future__ import annotations

import argparse
from importlib import metadata
from typing import Any

from . import OPTIONS, Option, plain

DISTRIBUTION = "its-convert-xml"


def version_line() -> str:
    """What --version prints: the installed distribution's name and version."""
    try:
        return f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:  # running from a tree that is not installed
        return f"{DISTRIBUTION} (version unknown: not installed)"


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=version_line(),
                        help=f"print the version ({DISTRIBUTION} X.Y.Z) and exit")


def shown_default(option: Option) -> str:
    """The default as --help says it: in words where the value alone does not say it."""
    if option.default_text is not None:
        return option.default_text
    if isinstance(option.default, bool):
        return "true" if option.default else "false"
    if option.kind == "text":
        return repr(option.default)
    return str(option.default)


def flag_help(option: Option) -> str:
    parts = [option.flag_help if option.kind == "bool" else plain(option.description)]
    if option.kind == "int":
        parts.append(f"{option.metavar}: {option.low}-{option.high}")
    if option.kind == "names":
        flag = option.flag_name
        parts.append(f"Comma-separated and/or repeated: {flag} item,tag or {flag} item {flag} "
                     "tag")
    text = " ".join(parts) + f" (default: {shown_default(option)})"
    return text.replace("%", "%%")  # argparse %-formats help strings


class ForceListNames(argparse.Action):
    """A list of names: each use of the flag kept apart until parsing ends (settle)."""

    def __init__(self, option_strings: list[str], dest: str, *, positional: str,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="+", **kwargs)
        self.positional = positional  # the argument that a use may have swallowed
        self.runs_key = f"_{dest}_runs"

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        runs = getattr(namespace, self.runs_key, None) or []
        runs.append(list(values))
        setattr(namespace, self.runs_key, runs)

    def settle(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> None:
        """The names, and the positional given back if a use took it."""
        runs: list[list[str]] = vars(namespace).pop(self.runs_key, None) or []
        if getattr(namespace, self.positional, None) is None:
            (action,) = [a for a in parser._actions if a.dest == self.positional]
            shown = action.metavar or action.dest
            takers = [run for run in runs if len(run) > 1]
            if len(takers) > 1:
                parser.error(f"the following arguments are required: {shown} (after several "
                             f"{self.option_strings[0]} NAME NAME…, it is ambiguous: put it "
                             f"first, or give the names as {self.option_strings[0]} a,b)")
            if not takers and getattr(namespace, "input_url", None):
                pass  # `xmlconv submit --from-url URL`: the URL takes the place of FILE
            elif not takers:
                parser.error(f"the following arguments are required: {shown}")
            else:
                setattr(namespace, self.positional, takers[0].pop())
        if runs:
            setattr(namespace, self.dest, [name.strip() for run in runs for value in run
                                           for name in value.split(",") if name.strip()])


class OptionParser(argparse.ArgumentParser):
    """A parser whose --force-list uses are settled once its arguments are parsed (also as a
    subcommand's parser: argparse parses a subcommand through this same method)."""

    def parse_known_args(self, args: Any = None,
                         namespace: argparse.Namespace | None = None) -> Any:
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            if isinstance(action, ForceListNames):
                action.settle(self, namespace)
        return namespace, extras


def add_option_flags(parser: Any, positional: str) -> None:
    """A flag for every conversion option on `parser` (an OptionParser or one of its argument
    groups); `positional` is the parser's nargs="?" argument that --force-list may swallow."""
    for option in OPTIONS:
        named = {"dest": option.name, "help": flag_help(option)}
        if option.kind == "bool":
            parser.add_argument(option.flag_name, action="store_const",
                                const=not option.default, default=None, **named)
        elif option.kind == "names":
            parser.add_argument(option.flag_name, action=ForceListNames, positional=positional,
                                metavar=option.metavar, **named)
        else:
            parser.add_argument(option.flag_name, type=int if option.kind == "int" else str,
                                choices=option.choices or None, metavar=option.metavar, **named)


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, by name (flags not given are left out)."""
    return {option.name: getattr(args, option.name) for option in OPTIONS
            if getattr(args, option.name, None) is not None}
