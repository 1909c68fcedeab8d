"""Benchmark: `xmlconv convert` per size and format against xmltodict + json.dump.

    .venv/bin/python -m bench.run [--sizes 10,100,300] [--formats json,jsonl,csv,yaml,text]
                                  [--xmltodict-300] [--keep-outputs]
                                  [--dense-sizes 100,300] [--peers-300] [--dense-repeat 2]

For every size, a deterministic input (bench/generate.py) is written to bench/data/ (or
reused when a file of exactly that size is already there). For every format, the CLI
runs in its own subprocess: wall seconds come from a monotonic clock around it, peak
RSS from os.wait4's rusage (ru_maxrss, exact, KiB on Linux). For json and jsonl the
baseline is `xmltodict.parse(file)` + `json.dump` in a subprocess of the same run
(skipped at 300 MB unless --xmltodict-300: it needs ~2.6 GB and ~2 minutes).

Outputs are checked cheaply (non-empty; jsonl lines and the csv header parse; json at
10 MB or less equals xmltodict's structure), then deleted unless --keep-outputs. A
markdown table and PASS/FAIL acceptance lines end the report; the exit status is 1 when
a conversion failed or a check failed. 1 MB = 2**20 bytes throughout.

Dense records (`generate.py --dense`: short elements and attributes, ~24 bytes an element)
get their own table: every format, and at 100 MB the peers -- orxml, xmltodict-rs,
rapidxmltodict, quick-xmltodict and xmltodict, each parse + orjson (bench/peers.py, the
`bench` extra) -- measured in the same run, and json --indent 2 beside json. Acceptance: json at
least 2x faster than the fastest peer; jsonl, csv, yaml and text within 1.3x of json's time,
json --indent 2 within 1.5x; each format against the floors measured in the same rounds (the
bare expat parse of the file in memory, `xmllint --stream` when installed): json, jsonl, yaml
and csv within 2.0x of the bare expat parse, text within 1.3x, and at 300 MB every format's
peak RSS within 64 MB (issue 19). A peer that is not installed is shown so, not dropped. Peers
and formats run --dense-repeat rounds in turn, each keeping its fastest run (and its highest peak
RSS), so that the machine's drifting speed does not decide a ratio.

Then bench/s3_roundtrip.py: one job of --s3-roundtrip-mb (default 300; 0 skips it) end to end
over HTTP (upload, conversion, download) on S3 (SeaweedFS) beside the local filesystem, with the
API's and the worker's peak RSS; its own table and acceptance lines follow.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.generate import GENERATOR_VERSION, MB, generate
from bench.peers import MISSING, PEERS

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
FORMATS = ("json", "jsonl", "csv", "yaml", "text")
EXTENSIONS = {"json": "json", "jsonl": "jsonl", "csv": "csv", "yaml": "yaml", "text": "txt"}
DEFAULT_SIZES = (10, 100, 300)

XMLTODICT_SCRIPT = """
import json, sys, xmltodict
with open(sys.argv[1], "rb") as f:
    doc = xmltodict.parse(f)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump(doc, out)
"""

# Runs argv[1:] as its child; prints {"seconds", "maxrss_kb", "returncode"} on stdout.
LAUNCHER = """
import json, os, sys, time
devnull = os.open(os.devnull, os.O_RDWR)
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.execvp(sys.argv[1], sys.argv[1:])
    except BaseException as exc:
        os.write(2, f"cannot run {sys.argv[1]}: {exc}\\n".encode())
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "maxrss_kb": usage.ru_maxrss,
                  "returncode": os.waitstatus_to_exitcode(status)}))
"""

# Acceptance thresholds.
THROUGHPUT_SIZE = 100
MIN_MBPS = {"json": 10.0, "jsonl": 10.0, "csv": 8.0, "yaml": 8.0, "text": 8.0}
MIN_SPEEDUP = {"json": 4.0, "jsonl": 4.0}
RSS_SIZE = 300
MAX_RSS_MB = 150.0
DEFAULT_DENSE_SIZES = (100, 300)
DENSE_PEER_SIZE = 100  # the peers hold the whole document: 1-4 GB at 100 MB
MIN_PEER_SPEEDUP = 2.0  # dense json against the fastest peer
MAX_JSON_RATIO = 1.3  # dense jsonl, csv, yaml, text against json
# Issue 19: each format against the bare expat parse of the same file, same run.
MAX_EXPAT_RATIO = {"json": 2.0, "jsonl": 2.0, "yaml": 2.0, "csv": 2.0, "text": 1.3}
EXPAT_FLOOR = "bare expat parse"
DENSE_RSS_SIZE = 300
DENSE_MAX_RSS_MB = 64.0  # issue 19
# Indented JSON beside json on the dense file (runs when json does): the engine's compact JSON
# re-indented in C as it is written, within this ratio of json's time.
INDENTED = "json --indent 2"
MAX_INDENTED_RATIO = 1.5


@dataclass
class Run:
    seconds: float
    rss_mb: float
    returncode: int
    stderr: str


@dataclass
class Row:
    size: int
    fmt: str
    ours: Run | None = None
    baseline: Run | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mbps(self) -> float | None:
        if self.ours is None or self.ours.returncode != 0 or self.ours.seconds <= 0:
            return None
        return self.size / self.ours.seconds

    @property
    def speedup(self) -> float | None:
        if not self.ok or self.baseline is None or self.baseline.returncode != 0:
            return None
        return self.baseline.seconds / self.ours.seconds

    @property
    def ok(self) -> bool:
        return self.ours is not None and self.ours.returncode == 0 and not self.problems


def say(message: str) -> None:
    print(message, flush=True)


def measure(cmd: list[str], timeout: float) -> Run:
    """Run `cmd` (stdin/stdout to /dev/null); wall seconds and exact peak RSS via wait4.

    The command runs as the grandchild of a tiny launcher: Linux carries a process's
    peak RSS over fork and exec, so a direct child of this (possibly large) process
    would report at least our own RSS. The launcher is a bare interpreter (~10 MB).
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, *cmd],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
            start_new_session=True,
        )
        try:
            report, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            report = b""
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace").strip()
    try:
        result = json.loads(report)
    except ValueError:
        why = f"{stderr}\n(no result: timeout {timeout:.0f}s?)".strip()
        return Run(float(timeout), 0.0, -1, why)
    if result["returncode"] < 0:
        stderr += f"\n(killed by signal {-result['returncode']})"
    return Run(result["seconds"], result["maxrss_kb"] / 1024, result["returncode"], stderr)


def xmlconv_command() -> list[str]:
    script = Path(sys.executable).parent / "xmlconv"
    if script.exists():
        return [str(script)]
    found = shutil.which("xmlconv")
    if found:
        return [found]
    raise SystemExit("xmlconv not found: run `make install` (pip install -e '.[dev]') first")


def input_file(size: int, data_dir: Path, *, dense: bool = False) -> Path:
    """The generated input of `size` MB (orders, or dense records), made once and reused."""
    kind = "dense" if dense else "orders"
    path = data_dir / f"{kind}-{size}MB-v{GENERATOR_VERSION}.xml"
    if path.exists() and path.stat().st_size == size * MB:
        say(f"input {path.relative_to(REPO) if path.is_relative_to(REPO) else path}: reused")
        return path
    start = time.perf_counter()
    records = generate(size, path, dense=dense)
    say(f"input {path.name}: generated {records} records in "
        f"{time.perf_counter() - start:.1f}s")
    return path


def _read_head(path: Path, limit: int = 1 << 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit)


def _read_tail(path: Path, limit: int = 1 << 16) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - limit))
        return f.read()


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            count += chunk.count(b"\n")
    return count


def check_output(row: Row, out: Path, baseline_out: Path | None) -> None:
    """Cheap sanity checks of one output; problems go to row.problems."""
    if not out.exists() or out.stat().st_size == 0:
        row.problems.append("output is missing or empty")
        return
    row.notes.append(f"{out.stat().st_size / MB:.1f} MB out")
    try:
        if row.fmt == "jsonl":
            first = _read_head(out).split(b"\n", 1)[0]
            last = _read_tail(out).rstrip(b"\n").rsplit(b"\n", 1)[-1]
            json.loads(first)
            json.loads(last)
            row.notes.append(f"{_count_lines(out)} lines")
        elif row.fmt == "csv":
            head = _read_head(out).decode("utf-8", "replace")
            rows = list(csv.reader(io.StringIO(head.rsplit("\n", 1)[0])))
            if not rows or not any(rows[0]):
                row.problems.append("csv has no header")
            else:
                row.notes.append(f"{len(rows[0])} columns")
        elif row.fmt == "json":
            tail = _read_tail(out, 256).rstrip()
            if not tail.endswith((b"}", b"]")):
                row.problems.append("json output does not end with } or ]")
            if row.size <= 10:
                if baseline_out is None or not baseline_out.exists():
                    row.notes.append("not compared (no xmltodict output)")
                else:
                    with open(out, "rb") as f:
                        ours = json.load(f)
                    with open(baseline_out, "rb") as f:
                        theirs = json.load(f)
                    if ours == theirs:
                        row.notes.append("== xmltodict")
                    else:
                        row.problems.append("json differs from xmltodict.parse")
    except (ValueError, UnicodeDecodeError) as exc:
        row.problems.append(f"output does not parse: {exc}")


def fmt_num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| size | format | seconds | MB/s | peak RSS MB | xmltodict s | xmltodict RSS MB "
        "| speedup |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours, base = row.ours, row.baseline
        base_ok = base is not None and base.returncode == 0
        seconds = fmt_num(ours.seconds, 2) if ours and ours.returncode == 0 else "FAILED"
        lines.append(
            f"| {row.size} MB | {row.fmt} | {seconds} | {fmt_num(row.mbps)} "
            f"| {fmt_num(ours.rss_mb if ours else None)} "
            f"| {fmt_num(base.seconds, 2) if base_ok else '-'} "
            f"| {fmt_num(base.rss_mb) if base_ok else '-'} "
            f"| {fmt_num(row.speedup) + 'x' if row.speedup is not None else '-'} |"
        )
    return "\n".join(lines)


def acceptance(rows: list[Row]) -> list[tuple[str, str]]:
    """(verdict, description) for every acceptance criterion."""
    by_key = {(r.size, r.fmt): r for r in rows}
    results: list[tuple[str, str]] = []
    for fmt in FORMATS:
        row = by_key.get((THROUGHPUT_SIZE, fmt))
        label = f"{THROUGHPUT_SIZE} MB {fmt}: >= {MIN_MBPS[fmt]:g} MB/s"
        if row is None:
            results.append(("SKIP", f"{label} (not run)"))
        elif row.mbps is None or not row.ok:
            results.append(("FAIL", f"{label} (conversion failed)"))
        else:
            verdict = "PASS" if row.mbps >= MIN_MBPS[fmt] else "FAIL"
            results.append((verdict, f"{label} (got {row.mbps:.1f})"))
        if fmt in MIN_SPEEDUP:
            label = f"{THROUGHPUT_SIZE} MB {fmt}: >= {MIN_SPEEDUP[fmt]:g}x xmltodict"
            if row is None or row.baseline is None:
                results.append(("SKIP", f"{label} (not run)"))
            elif row.speedup is None:
                results.append(("FAIL", f"{label} (a run failed)"))
            else:
                verdict = "PASS" if row.speedup >= MIN_SPEEDUP[fmt] else "FAIL"
                results.append((verdict, f"{label} (got {row.speedup:.1f}x)"))
    for fmt in FORMATS:
        row = by_key.get((RSS_SIZE, fmt))
        label = f"{RSS_SIZE} MB {fmt}: peak RSS <= {MAX_RSS_MB:g} MB"
        if row is None:
            results.append(("SKIP", f"{label} (not run)"))
        elif not row.ok:
            results.append(("FAIL", f"{label} (conversion failed)"))
        else:
            verdict = "PASS" if row.ours.rss_mb <= MAX_RSS_MB else "FAIL"
            results.append((verdict, f"{label} (got {row.ours.rss_mb:.1f})"))
    for row in rows:
        if not row.ok:
            why = "; ".join(row.problems) or "exit status " + str(row.ours.returncode)
            results.append(("FAIL", f"{row.size} MB {row.fmt}: output check ({why})"))
    if rows and all(r.ok for r in rows):
        results.append(("PASS", f"all {len(rows)} outputs non-empty and sane"))
    return results


# ------------------------------------------------------------------------ dense records


@dataclass
class DenseRow:
    size: int
    name: str  # a format, a peer's name, or a floor's
    peer: bool
    floor: bool = False  # the parse alone: bare expat, xmllint --stream
    run: Run | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.run is not None and self.run.returncode == 0


def run_dense(args: argparse.Namespace, xmlconv: list[str], data_dir: Path,
              out_dir: Path) -> list[DenseRow]:
    """Every peer and format on each dense input, `args.dense_repeat` rounds taken in turn
    (json, jsonl, ..., then again), each keeping its fastest run and its highest peak RSS: on
    a shared machine whose speed drifts, rounds in turn compare like with like."""
    rows: list[DenseRow] = []
    peers_script = str(Path(__file__).resolve().parent / "peers.py")
    for size in args.dense_sizes:
        src = input_file(size, data_dir, dense=True)
        runs: list[tuple[DenseRow, list[str], Path]] = [
            (DenseRow(size, EXPAT_FLOOR, False, floor=True),
             [sys.executable, peers_script, "--expat", str(src)], out_dir / "none")]
        if shutil.which("xmllint"):
            runs.append((DenseRow(size, "xmllint --stream", False, floor=True),
                         ["xmllint", "--stream", "--noout", str(src)], out_dir / "none"))
        if size <= DENSE_PEER_SIZE or args.peers_300:
            for name in PEERS:
                out = out_dir / f"{src.stem}.{name}.json"
                runs.append((DenseRow(size, name, True),
                             [sys.executable, peers_script, name, str(src), str(out)], out))
        for fmt in args.formats:
            out = out_dir / f"{src.stem}.{EXTENSIONS[fmt]}"
            runs.append((DenseRow(size, fmt, False),
                         [*xmlconv, "convert", str(src), "-o", str(out), "--to", fmt], out))
        if "json" in args.formats:
            out = out_dir / f"{src.stem}.indent2.json"
            runs.append((DenseRow(size, INDENTED, False),
                         [*xmlconv, "convert", str(src), "-o", str(out), "--to",
                          *INDENTED.split()], out))
        for _ in range(args.dense_repeat):
            for row, cmd, out in runs:
                if row.note:  # failed or missing once: not run again
                    continue
                run = measure(cmd, args.timeout)
                _dense_outcome(row, run, out)
                say(f"dense {size} MB {row.name}{' + orjson' if row.peer else ''}: "
                    + (f"{run.seconds:.2f}s, {run.rss_mb:.0f} MB RSS" if not row.note
                       else row.note))
                if out.exists() and (row.peer or not args.keep_outputs):
                    out.unlink()
        rows.extend(row for row, _, _ in runs)
    return rows


def _dense_outcome(row: DenseRow, run: Run, out: Path) -> None:
    """Fold one run into its row: the fastest time, the highest peak RSS, or what failed."""
    if row.peer and run.returncode == MISSING:
        row.note = "not installed (pip install -e '.[bench]')"
    elif run.returncode != 0:
        row.note = f"FAILED: {run.stderr[-500:]}"
    elif not (row.peer or row.floor) and (not out.exists() or out.stat().st_size == 0):
        row.note = "output is missing or empty"
    if row.note:
        row.run = run
        return
    if row.run is None:
        row.run = run
    else:
        row.run = Run(min(row.run.seconds, run.seconds), max(row.run.rss_mb, run.rss_mb),
                      0, row.run.stderr)


def _json_seconds(rows: list[DenseRow], size: int) -> float | None:
    for row in rows:
        if row.size == size and row.name == "json" and not row.peer and row.ok:
            return row.run.seconds
    return None


def _expat_seconds(rows: list[DenseRow], size: int) -> float | None:
    for row in rows:
        if row.size == size and row.floor and row.name == EXPAT_FLOOR and row.ok:
            return row.run.seconds
    return None


def dense_table(rows: list[DenseRow]) -> str:
    lines = ["| size | what | seconds | MB/s | peak RSS MB | time / json | time / expat |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        what = (f"{row.name} + orjson" if row.peer else f"floor: {row.name}" if row.floor
                else f"xmlconv --to {row.name}")
        json_s = _json_seconds(rows, row.size)
        expat_s = _expat_seconds(rows, row.size)
        if row.ok:
            ratio = f"{row.run.seconds / json_s:.2f}" if json_s else "-"
            floor = f"{row.run.seconds / expat_s:.2f}" if expat_s else "-"
            lines.append(f"| {row.size} MB | {what} | {row.run.seconds:.2f} "
                         f"| {row.size / row.run.seconds:.1f} | {row.run.rss_mb:.0f} | {ratio} "
                         f"| {floor} |")
        else:
            lines.append(f"| {row.size} MB | {what} | {row.note or 'FAILED'} | - | - | - | - |")
    return "\n".join(lines)


def dense_acceptance(rows: list[DenseRow]) -> list[tuple[str, str]]:
    results: list[tuple[str, str]] = []
    for size in sorted({r.size for r in rows}):
        json_s = _json_seconds(rows, size)
        peers = [r for r in rows if r.size == size and r.peer and r.ok]
        missing = [r.name for r in rows if r.size == size and r.peer and not r.ok]
        if peers:
            fastest = min(peers, key=lambda r: r.run.seconds)
            label = (f"dense {size} MB json: >= {MIN_PEER_SPEEDUP:g}x the fastest peer "
                     f"({fastest.name})")
            if json_s is None:
                results.append(("FAIL", f"{label} (json failed or not run)"))
            else:
                speedup = fastest.run.seconds / json_s
                verdict = "PASS" if speedup >= MIN_PEER_SPEEDUP else "FAIL"
                results.append((verdict, f"{label} (got {speedup:.1f}x)"))
        if missing:
            results.append(("NOTE", f"dense {size} MB peers not measured: {', '.join(missing)}"))
        expat_s = _expat_seconds(rows, size)
        for row in rows:
            if row.size != size or row.peer or row.floor or expat_s is None:
                continue
            limit = MAX_EXPAT_RATIO.get(row.name)
            if limit is None:  # indented json: measured against json's time below
                continue
            label = f"dense {size} MB {row.name}: <= {limit:g}x the bare expat parse"
            if not row.ok:
                results.append(("FAIL", f"{label} (a conversion failed)"))
            else:
                ratio = row.run.seconds / expat_s
                verdict = "PASS" if ratio <= limit else "FAIL"
                results.append((verdict, f"{label} (got {ratio:.2f}x)"))
        for row in rows:
            if row.size != size or row.peer or row.floor or row.name == "json":
                continue
            limit = MAX_INDENTED_RATIO if row.name == INDENTED else MAX_JSON_RATIO
            label = f"dense {size} MB {row.name}: <= {limit:g}x json's time"
            if not row.ok or json_s is None:
                results.append(("FAIL", f"{label} (a conversion failed)"))
            else:
                ratio = row.run.seconds / json_s
                verdict = "PASS" if ratio <= limit else "FAIL"
                results.append((verdict, f"{label} (got {ratio:.2f}x)"))
        if size == DENSE_RSS_SIZE:
            for row in rows:
                if row.size != size or row.peer or row.floor:
                    continue
                label = f"dense {size} MB {row.name}: peak RSS <= {DENSE_MAX_RSS_MB:g} MB"
                if not row.ok:
                    results.append(("FAIL", f"{label} (conversion failed)"))
                else:
                    verdict = "PASS" if row.run.rss_mb <= DENSE_MAX_RSS_MB else "FAIL"
                    results.append((verdict, f"{label} (got {row.run.rss_mb:.1f})"))
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated input sizes in MB (default: 10,100,300)")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help="comma-separated output formats (default: all)")
    parser.add_argument("--xmltodict-300", action="store_true",
                        help="also run the xmltodict baseline at 300 MB and above")
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--keep-outputs", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds before a single run is killed")
    parser.add_argument("--dense-sizes", default=",".join(map(str, DEFAULT_DENSE_SIZES)),
                        help="comma-separated sizes in MB of the dense-records inputs, "
                             "'' for none (default: 100,300)")
    parser.add_argument("--peers-300", action="store_true",
                        help="also run the peers on dense inputs above 100 MB (GBs of RAM)")
    parser.add_argument("--dense-repeat", type=int, default=2,
                        help="rounds of the dense comparison, in turn; each keeps its fastest "
                             "run (default 2)")
    parser.add_argument("--s3-roundtrip-mb", type=float, default=300.0,
                        help="size of the end-to-end job on local vs S3 storage "
                             "(bench/s3_roundtrip.py); 0 skips it")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes whole numbers of MB, e.g. 10,100")
    if not args.sizes or any(s <= 0 for s in args.sizes):
        parser.error("--sizes must be positive")
    try:
        args.dense_sizes = [int(s) for s in args.dense_sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--dense-sizes takes whole numbers of MB, e.g. 100,300")
    args.formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in args.formats if f not in FORMATS]
    if unknown or not args.formats:
        parser.error(f"--formats: unknown {unknown}; choose from {', '.join(FORMATS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    xmlconv = xmlconv_command()
    data_dir: Path = args.data_dir
    out_dir = data_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    import lxml.etree

    say(f"python {platform.python_version()}, lxml {lxml.etree.__version__}, "
        f"{os.cpu_count()} cpus, {platform.machine()}; sizes {args.sizes}, "
        f"formats {args.formats}")

    rows: list[Row] = []
    for size in args.sizes:
        src = input_file(size, data_dir)
        baseline: Run | None = None
        baseline_out: Path | None = None
        wants_baseline = any(f in MIN_SPEEDUP for f in args.formats)
        if wants_baseline and (size < RSS_SIZE or args.xmltodict_300):
            baseline_out = out_dir / f"{src.stem}.xmltodict.json"
            baseline = measure([sys.executable, "-c", XMLTODICT_SCRIPT, str(src),
                                str(baseline_out)], args.timeout)
            if baseline.returncode != 0:
                say(f"{size} MB xmltodict: FAILED ({baseline.stderr[-500:]})")
            else:
                say(f"{size} MB xmltodict: {baseline.seconds:.2f}s, "
                    f"{size / baseline.seconds:.1f} MB/s, {baseline.rss_mb:.0f} MB RSS")
        elif wants_baseline:
            say(f"{size} MB xmltodict: skipped (pass --xmltodict-300 to include it)")

        for fmt in args.formats:
            row = Row(size, fmt, baseline=baseline if fmt in MIN_SPEEDUP else None)
            out = out_dir / f"{src.stem}.{EXTENSIONS[fmt]}"
            if out.exists():
                out.unlink()
            row.ours = measure([*xmlconv, "convert", str(src), "-o", str(out), "--to", fmt],
                               args.timeout)
            if row.ours.returncode != 0:
                row.problems.append(f"exit status {row.ours.returncode}")
                say(f"{size} MB {fmt}: FAILED: {row.ours.stderr[-1000:]}")
            else:
                check_output(row, out, baseline_out if fmt == "json" else None)
                speed = f", {row.speedup:.1f}x xmltodict" if row.speedup else ""
                say(f"{size} MB {fmt}: {row.ours.seconds:.2f}s, {row.mbps:.1f} MB/s, "
                    f"{row.ours.rss_mb:.0f} MB RSS{speed}; "
                    f"{', '.join(row.notes + row.problems)}")
            if not args.keep_outputs and out.exists():
                out.unlink()
            rows.append(row)
        if baseline_out is not None and not args.keep_outputs and baseline_out.exists():
            baseline_out.unlink()

    say("")
    say(table(rows))
    if any(r.fmt == "jsonl" and r.baseline for r in rows):
        say("\njsonl speedup is measured against the same xmltodict.parse + json.dump run.")
    dense_rows = run_dense(args, xmlconv, data_dir, out_dir) if args.dense_sizes else []
    if dense_rows:
        say("\nDense records (bench/generate.py --dense; peers parse in memory, then orjson):")
        say(dense_table(dense_rows))
    say("\nAcceptance:")
    results = acceptance(rows) + dense_acceptance(dense_rows)
    for verdict, text in results:
        say(f"{verdict} {text}")
    status = 1 if any(v == "FAIL" for v, _ in results) else 0
    if args.s3_roundtrip_mb > 0:
        from bench.s3_roundtrip import report, roundtrip

        say(f"\nEnd to end over HTTP, local vs S3 storage ({args.s3_roundtrip_mb:g} MB, "
            "bench/s3_roundtrip.py):")
        text, s3_status = report(roundtrip(args.s3_roundtrip_mb, timeout=args.timeout))
        say(text)
        status = max(status, s3_status)
    return status


if __name__ == "__main__":
    sys.exit(main())
