"""`xmlconv`: the converter's command line (a thin layer over converter.convert)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import orjson

from .errors import ConversionError
from .formats import FORMATS
from .options import NAMESPACE_MODES, TYPE_MODES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xmlconv", description="Convert XML, streaming.")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="convert one XML file")
    convert.add_argument("input", help="XML file, or - for standard input")
    convert.add_argument("-o", "--output", help="output file (default: standard output)")
    convert.add_argument("--to", dest="format", required=True, choices=sorted(FORMATS))
    convert.add_argument("--record-path", help="records for jsonl/csv, e.g. orders/order")
    convert.add_argument("--namespaces", choices=NAMESPACE_MODES)
    convert.add_argument("--attr-prefix")
    convert.add_argument("--text-key")
    convert.add_argument("--force-list", nargs="+", metavar="NAME")
    convert.add_argument("--types", choices=TYPE_MODES)
    convert.add_argument("--indent", type=int)
    convert.add_argument("--keep-whitespace", dest="strip_whitespace", action="store_false",
                         default=None, help="keep whitespace-only and unstripped text")
    convert.add_argument("--separator", help="text: between text nodes (default newline)")
    convert.add_argument("--include-attributes", action="store_true", default=None,
                         help="text: include attribute values")
    convert.add_argument("--max-depth", type=int)
    return parser


_OPTION_ARGS = ("record_path", "namespaces", "attr_prefix", "text_key", "force_list", "types",
                "indent", "strip_whitespace", "separator", "include_attributes", "max_depth")


def _fail(error: ConversionError) -> int:
    sys.stderr.write(orjson.dumps({"error": error.to_dict()}).decode() + "\n")
    return 1


def _run_convert(args: argparse.Namespace) -> int:
    from .engine import convert

    options = {name: getattr(args, name) for name in _OPTION_ARGS
               if getattr(args, name) is not None}
    source = sys.stdin.buffer if args.input == "-" else args.input
    if args.input != "-" and not os.path.isfile(args.input):
        sys.stderr.write(orjson.dumps({"error": {
            "code": "INPUT_NOT_FOUND", "message": f"no such file: {args.input}"}}).decode() + "\n")
        return 1
    # Output goes to a temporary file first: a failed conversion leaves nothing that
    # looks like a result, neither a file nor half a document on stdout.
    target_dir = Path(args.output).resolve().parent if args.output else None
    with tempfile.NamedTemporaryFile(dir=target_dir, prefix=".xmlconv-", delete=False) as tmp:
        try:
            result = convert(source, tmp, args.format, options)
        except ConversionError as error:
            tmp.close()
            os.unlink(tmp.name)
            return _fail(error)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    if args.output:
        os.replace(tmp.name, args.output)
    else:
        with open(tmp.name, "rb") as done:
            shutil.copyfileobj(done, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
        os.unlink(tmp.name)
    if result.record_path is not None:
        summary = {"record_path": result.record_path, "records": result.records}
        sys.stderr.write(orjson.dumps(summary).decode() + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "convert":
        return _run_convert(args)
    return 2  # argparse rejects unknown commands before this


if __name__ == "__main__":
    raise SystemExit(main())
