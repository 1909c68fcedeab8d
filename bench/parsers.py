"""The parser under the engine, measured: CPU seconds of the engine's text and json modes beside
the bare expat parse of the same file (issue 19's yardstick), on the dense and the orders file.

    .venv/bin/python -m bench.parsers [--size 100] [--rounds 3] [--formats text,json]
                                      [--variant LABEL:VAR=VALUE[,VAR=VALUE] ...]

Each measurement runs in its own process and counts only its own work (user + system CPU
seconds from getrusage around the conversion, or around the parse of the file already read
into memory for bare expat): interpreter start and imports are left out. Rounds are taken in
turn (every row once, then again) and each row keeps its fastest, so that a shared machine's
drifting speed does not decide a ratio. `--variant` runs the engine rows again with an
environment variable set: another build (`main:PYTHONPATH=/work/main`), or a prototype's
switch (`expat:CONVERTER_PARSER=expat` for the expat engine of docs/converter.md).
`json-indent2` is json with indent=2 (the engine's compact JSON re-indented as it is written).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.run import DATA, input_file

# Runs one measurement: argv = what, path; prints the CPU seconds of the work alone.
CHILD = """
import io, os, resource, sys
what, path = sys.argv[1], sys.argv[2]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
if what == "expat":
    import pyexpat
    with open(path, "rb") as stream:
        data = stream.read()
    start = cpu()
    pyexpat.ParserCreate().Parse(data, True)
else:
    from converter import convert
    fmt, _, indent = what.partition("-indent")  # json-indent2: json with indent=2
    with open(os.devnull, "wb") as sink:
        start = cpu()
        convert(path, sink, fmt, {"indent": int(indent)} if indent else None)
print(cpu() - start)
"""
FORMATS = ("text", "json", "json-indent2", "jsonl", "yaml", "csv")
FLOOR = "bare expat parse"


def measure(what: str, path: Path, env: dict[str, str]) -> float:
    # Run from "/": the converter imported is the installed one, or a variant's PYTHONPATH's.
    done = subprocess.run([sys.executable, "-c", CHILD, what, str(path.resolve())], env=env,
                          cwd="/", check=True, capture_output=True, text=True, timeout=600)
    return float(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100, help="MB of each file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", default="text,json",
                        help=f"the engine's formats measured, of {','.join(FORMATS)}")
    parser.add_argument("--variant", action="append", default=[],
                        help="LABEL:VAR=VALUE[,VAR=VALUE]: the engine rows again with those set")
    args = parser.parse_args(argv)
    formats = args.formats.split(",")
    if not set(formats) <= set(FORMATS):
        parser.error(f"--formats: each of {', '.join(FORMATS)}")
    engines = [("engine", {})]
    for variant in args.variant:
        label, _, settings = variant.partition(":")
        engines.append((label, dict(setting.partition("=")[::2]
                                    for setting in settings.split(","))))
    DATA.mkdir(parents=True, exist_ok=True)
    files = {"dense": input_file(args.size, DATA, dense=True),
             "orders": input_file(args.size, DATA)}
    rows = [(kind, FLOOR, "expat", {}) for kind in files]
    rows += [(kind, f"{label} {fmt}", fmt, env)
             for kind in files for fmt in formats for label, env in engines]
    best: dict[tuple[str, str], float] = {}
    for round_ in range(args.rounds):
        for kind, label, what, env in rows:
            seconds = measure(what, files[kind], {**os.environ, **env})
            key = (kind, label)
            best[key] = min(best.get(key, seconds), seconds)
        print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr)
    print(f"{args.size} MB files, CPU seconds, best of {args.rounds} rounds taken in turn\n")
    print("| file | what | CPU s | / bare expat |")
    print("|---|---|---:|---:|")
    for kind, label, _what, _env in rows:
        seconds = best[(kind, label)]
        print(f"| {kind} | {label} | {seconds:.2f} | {seconds / best[(kind, FLOOR)]:.2f} |")
    print(json.dumps({f"{kind} {label}": round(s, 3) for (kind, label), s in best.items()}),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
