"""The converter's command line, `convert` (a thin layer over converter.convert): run as
`xmlconv convert` (client/cli.py hands it its arguments) or `python -m converter.cli convert`.
Exit statuses: converter/exit_status.py."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shutil
import sys
import tempfile
from typing import Any

import orjson

from optionspec.flags import OptionParser, add_option_flags, add_version_flag, options_from_args

from .errors import INPUT_NOT_FOUND, ConversionError, error_body, io_error
from .exit_status import ExitStatus
from .formats import FORMATS
from .limits import Limits
from .result_file import result_file

PROG = "python -m converter.cli"
STDOUT = "-"  # -o -: stream to standard output as the conversion goes


def _parser(prog: str = PROG) -> argparse.ArgumentParser:
    usage = f"input --to {{{','.join(sorted(FORMATS))}}} [-o OUTPUT] [options]"
    # The top parser's usage is convert's too: its errors (an unknown flag) then show how to
    # run the one command it has, not a list of commands that `xmlconv` would belie.
    parser = argparse.ArgumentParser(prog=prog, usage=f"%(prog)s convert {usage}",
                                     description="Convert XML, streaming.")
    add_version_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OptionParser)
    convert = commands.add_parser(
        "convert", help="convert one XML file", description="Convert one XML file, streaming.",
        usage=f"%(prog)s {usage}")
    # nargs="?" only so that --force-list can give the input back (optionspec/flags.py);
    # a missing input is still an error.
    convert.add_argument("input", nargs="?",
                         help="XML file, or - for standard input (required)")
    convert.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help="write the result to this file, atomically: to a temporary file beside it, "
             "renamed when the conversion succeeds (mode 0666 minus the umask); a failed "
             "conversion leaves no file (a device or a FIFO, such as /dev/null, is written "
             "to as it is). '-': stream to standard output as the conversion "
             "goes (on an error, part of the result may already be written) "
             "(default: standard output, written only once the conversion has succeeded)")
    convert.add_argument("--to", dest="format", required=True, choices=sorted(FORMATS),
                         help="output format (required)")
    add_option_flags(convert, positional="input")
    limits = convert.add_argument_group(
        "limits", "what one document may cost (docs/limits.md); passing one fails the "
                  "conversion with its code")
    defaults = Limits()
    for field in dataclasses.fields(Limits):
        default = getattr(defaults, field.name)
        limits.add_argument("--" + field.name.replace("_", "-"), dest=field.name, type=int,
                            metavar="N", default=None,
                            help=f"(default: {'unbounded' if default is None else default})")
    return parser


def _limits(args: argparse.Namespace) -> Limits:
    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(Limits)
             if getattr(args, field.name, None) is not None}
    return Limits(**given)


def _fail(body: dict, status: ExitStatus) -> ExitStatus:
    """One JSON line on stderr, the error in the API's shape."""
    sys.stderr.write(orjson.dumps(body).decode() + "\n")
    return status


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
    """Complete or not at all (converter/result_file.py)."""
    with result_file(args.output) as out:
        return convert(source, out, args.format, options)


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

    options = options_from_args(args)
    try:
        limits = _limits(args)
    except ValueError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return ExitStatus.USAGE
    convert = functools.partial(convert, limits=limits)
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
