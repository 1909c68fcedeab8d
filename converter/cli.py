"""The converter's command line, `convert` (a thin layer over converter.convert): run as
`xmlconv convert` (client/cli.py hands it its arguments) or `python -m converter.cli convert`.
Exit statuses: converter/exit_status.py."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from .errors import INPUT_NOT_FOUND, ConversionError, error_body, io_error
from .exit_status import ExitStatus
from .formats import FORMATS
from .options import MAX_DEPTH_CEILING, NAMESPACE_MODES, OPTION_NAMES, TYPE_MODES, Options

DISTRIBUTION = "its-convert-xml"
PROG = "python -m converter.cli"
STDOUT = "-"  # -o -: stream to standard output as the conversion goes

_DEFAULTS = Options()  # the defaults the help shows are the library's own
_FORCE_LIST_RUNS = "_force_list_runs"  # each --force-list use, kept apart while parsing


def _version() -> str:
    try:
        return f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:  # running from a tree that is not installed
        return f"{DISTRIBUTION} (version unknown: not installed)"


def _default(name: str, shown: str | None = None) -> str:
    """'(default: …)' for an option, from converter/options.py unless `shown` says it."""
    if shown is None:
        value = getattr(_DEFAULTS, name)
        if isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, str):
            shown = repr(value)
        else:
            shown = str(value)
    return f"(default: {shown})".replace("%", "%%")  # argparse %-formats help strings


class _ForceListNames(argparse.Action):
    """--force-list NAME…: names comma-separated, the flag repeatable. Each use is kept
    apart until parsing ends (see _ConvertParser), as a use of the old space-separated
    form may have taken the input path."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        runs = getattr(namespace, _FORCE_LIST_RUNS, None) or []
        runs.append(list(values))
        setattr(namespace, _FORCE_LIST_RUNS, runs)


class _ConvertParser(argparse.ArgumentParser):
    """`convert`'s parser. `--force-list` takes one or more names, so in
    `--force-list item orders.xml` it swallows the input path: when no input is left,
    the last value of the one --force-list use that took several is the input."""

    def parse_known_args(self, args: Any = None,
                         namespace: argparse.Namespace | None = None) -> Any:
        namespace, extras = super().parse_known_args(args, namespace)
        if not hasattr(namespace, "input"):  # not the convert parser (no such parser today)
            return namespace, extras
        runs: list[list[str]] = vars(namespace).pop(_FORCE_LIST_RUNS, None) or []
        if namespace.input is None:
            takers = [run for run in runs if len(run) > 1]
            if len(takers) > 1:
                self.error("the following arguments are required: input (after several "
                           "--force-list NAME NAME…, the input path is ambiguous: put it "
                           "first, or give the names as --force-list a,b or --force-list a "
                           "--force-list b)")
            if not takers:
                self.error("the following arguments are required: input")
            namespace.input = takers[0].pop()
        if runs:
            namespace.force_list = [name.strip() for run in runs for value in run
                                    for name in value.split(",") if name.strip()]
        return namespace, extras


def _parser(prog: str = PROG) -> argparse.ArgumentParser:
    usage = f"input --to {{{','.join(sorted(FORMATS))}}} [-o OUTPUT] [options]"
    # The top parser's usage is convert's too: its errors (an unknown flag) then show how to
    # run the one command it has, not a list of commands that `xmlconv` would belie.
    parser = argparse.ArgumentParser(prog=prog, usage=f"%(prog)s convert {usage}",
                                     description="Convert XML, streaming.")
    parser.add_argument("--version", action="version", version=_version(),
                        help=f"print the version ({DISTRIBUTION} X.Y.Z) and exit")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_ConvertParser)
    convert = commands.add_parser(
        "convert", help="convert one XML file", description="Convert one XML file, streaming.",
        usage=f"%(prog)s {usage}")
    # nargs="?" only so that _ConvertParser can take the input back from --force-list;
    # a missing input is still an error.
    convert.add_argument("input", nargs="?",
                         help="XML file, or - for standard input (required)")
    convert.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help="write the result to this file, atomically: to a temporary file beside it, "
             "renamed when the conversion succeeds (mode 0666 minus the umask); a failed "
             "conversion leaves no file. '-': stream to standard output as the conversion "
             "goes (on an error, part of the result may already be written) "
             "(default: standard output, written only once the conversion has succeeded)")
    convert.add_argument("--to", dest="format", required=True, choices=sorted(FORMATS),
                         help="output format (required)")
    convert.add_argument(
        "--record-path", metavar="PATH",
        help="jsonl, csv: the record element's path from the root, e.g. orders/order "
             + _default("record_path", "the most repeated element, picked from the "
                                       "document's first 4 MiB"))
    convert.add_argument(
        "--namespaces", choices=NAMESPACE_MODES,
        help="keep: names with their prefixes as written, xmlns declarations as "
             "attributes; strip: local names, no xmlns attributes; expand: uri:local "
             "names " + _default("namespaces", _DEFAULTS.namespaces))
    convert.add_argument("--attr-prefix", metavar="PREFIX",
                         help="prefix of attribute keys " + _default("attr_prefix"))
    convert.add_argument("--text-key", metavar="KEY",
                         help="key of text beside attributes or children "
                              + _default("text_key"))
    convert.add_argument(
        "--force-list", nargs="+", action=_ForceListNames, metavar="NAME",
        help="element names whose values are always lists; comma-separated and/or "
             "repeated: --force-list item,tag or --force-list item --force-list tag "
             + _default("force_list", "none"))
    convert.add_argument(
        "--types", choices=TYPE_MODES,
        help="string: every value a string; infer: integers, decimals and true/false "
             "become numbers and booleans " + _default("types", _DEFAULTS.types))
    convert.add_argument(
        "--indent", type=int, metavar="N",
        help="json: indent by N spaces, 0-8 "
             + _default("indent", "compact" if _DEFAULTS.indent is None else None))
    convert.add_argument(
        "--keep-whitespace", dest="strip_whitespace", action="store_false", default=None,
        help="keep whitespace-only and unstripped text "
             + _default("strip_whitespace",
                        "text stripped" if _DEFAULTS.strip_whitespace else "kept"))
    convert.add_argument(
        "--separator", metavar="TEXT",
        help="text: written after each text node "
             + _default("separator", "newline" if _DEFAULTS.separator == "\n" else None))
    convert.add_argument(
        "--include-attributes", action="store_true", default=None,
        help="text: include attribute values, before the element's text "
             + _default("include_attributes", "not included"
                        if not _DEFAULTS.include_attributes else "included"))
    convert.add_argument(
        "--max-depth", type=int, metavar="N",
        help=f"fail with DEPTH_LIMIT_EXCEEDED on nesting deeper than N, 1-{MAX_DEPTH_CEILING} "
             + _default("max_depth"))
    return parser


def _fail(body: dict, status: ExitStatus) -> ExitStatus:
    """One JSON line on stderr, the error in the API's shape."""
    sys.stderr.write(orjson.dumps(body).decode() + "\n")
    return status


def _umask() -> int:
    """The process's umask. Reading it means setting it: set 0, put it back at once."""
    mask = os.umask(0)
    try:
        return mask
    finally:
        os.umask(mask)


def _silence_stdout() -> None:
    """The reader of stdout went away (`… -o - | head`): point stdout at /dev/null so
    that flushing it at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _convert_to_stdout(convert: Any, source: Any, args: argparse.Namespace,
                       options: dict[str, Any]) -> Any:
    """-o -: straight to stdout, flushed after every input chunk. Not atomic: on an
    error, stdout may already hold part of the result."""
    out = sys.stdout.buffer

    def flush(_done: int, _total: int) -> None:
        out.flush()

    result = convert(source, out, args.format, options, flush)
    out.flush()
    return result


def _convert_to_file(convert: Any, source: Any, args: argparse.Namespace,
                     options: dict[str, Any]) -> Any:
    """A temporary file beside the output, renamed when the conversion has succeeded: a
    failed conversion leaves nothing that looks like a result. The file gets the mode a
    new file gets (0666 minus the umask), not mkstemp's 0600."""
    target_dir = Path(args.output).resolve().parent
    try:
        made = tempfile.NamedTemporaryFile(  # noqa: SIM115 (entered just below)
            dir=target_dir, prefix=".xmlconv-", delete=False)
    except OSError as exc:  # the output's directory: name the output, not the temporary file
        exc.filename = args.output
        raise
    with made as tmp:
        try:
            result = convert(source, tmp, args.format, options)
            os.fchmod(tmp.fileno(), 0o666 & ~_umask())
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    try:
        os.replace(tmp.name, args.output)
    except BaseException:
        os.unlink(tmp.name)
        raise
    return result


def _convert_buffered(convert: Any, source: Any, args: argparse.Namespace,
                      options: dict[str, Any]) -> Any:
    """No -o: to a temporary file, copied to stdout once the conversion has succeeded,
    so that a failed conversion prints nothing that looks like a result."""
    with tempfile.TemporaryFile(prefix=".xmlconv-") as tmp:
        result = convert(source, tmp, args.format, options)
        tmp.seek(0)
        shutil.copyfileobj(tmp, sys.stdout.buffer, 1 << 20)
    sys.stdout.buffer.flush()
    return result


def _run_convert(args: argparse.Namespace) -> ExitStatus:
    from .engine import convert

    # Each option's flag stores under the option's own name (tests/unit/test_converter_cli.py
    # checks that every field of Options has one); a flag not given is None.
    options = {name: getattr(args, name) for name in OPTION_NAMES
               if getattr(args, name) is not None}
    source = sys.stdin.buffer if args.input == "-" else args.input
    if args.input != "-" and not os.path.isfile(args.input):
        return _fail(error_body(INPUT_NOT_FOUND, f"no such file: {args.input}"),
                     ExitStatus.FILE_ERROR)
    if args.output == STDOUT:
        run = _convert_to_stdout
    elif args.output:
        run = _convert_to_file
    else:
        run = _convert_buffered
    try:
        result = run(convert, source, args, options)
    except ConversionError as error:
        return _fail(error.envelope(), ExitStatus.of(error.code) or ExitStatus.ERROR)
    except BrokenPipeError:
        _silence_stdout()
        return ExitStatus.ERROR
    except OSError as exc:  # reading the input, or writing the result beside -o
        return _fail(io_error(exc), ExitStatus.FILE_ERROR)
    if result.record_path is not None:
        summary = {"record_path": result.record_path, "records": result.records}
        sys.stderr.write(orjson.dumps(summary).decode() + "\n")
    return ExitStatus.SUCCESS


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """`prog`: the command's name in usage and errors (`xmlconv` when the client runs it)."""
    args = _parser(prog).parse_args(argv)
    if args.command == "convert":
        return _run_convert(args)
    return ExitStatus.USAGE  # argparse rejects unknown commands before this


if __name__ == "__main__":
    raise SystemExit(main())
