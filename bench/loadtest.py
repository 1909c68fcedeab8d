"""Load test: what the real stack holds on this machine, load generator included.

    .venv/bin/python -m bench.loadtest [--quick] [--duration 20] [--connections 32]
                                        [--rate-connections 64] [--target-rate 1200]
                                        [--clients 16] [--jobs-per-client 30] [--big-mb 300]
                                        [--streams 1000] [--streams-per-job 100]
                                        [--stream-job-mb 128] [--stream-job-share 0.01]
                                        [--stream-seconds 20]
                                        [--tracing-rounds 2] [--tracing-jobs-per-client 10]
                                        [--profile DIR] [--workdir DIR] [--set NAME=VALUE ...]
                                        [--skip polls,rate,jobs,big,streams,tracing]

Starts its own stack on loopback (testkit/stack.py's Stack: redis-server with an append-only
file fsynced every second, one Celery worker, celery beat, the API under gunicorn) with the
settings a production deployment uses: DEPLOY_ENV=production, API keys on (AUTH_MODE=api_key
by default there), every other setting at its default (API_WORKERS, WORKER_CONCURRENCY,
LOG_LEVEL=INFO, ...). Its API keys are made with the clients module (jobs/api_keys.py, what
`xmlconv-admin keys create` runs), each with a request rate high enough that the limiter counts
every request but never refuses one. Then, in order:

1. polls, the ceiling: one succeeded job, then `wrk --latency` (a Lua script adds the key's
   Authorization header) GETs /jobs/<id> over --connections keep-alive connections for
   --duration seconds (after a 3 s warm-up run that is not counted): requests/s, and p50/p99
   from wrk's latency distribution — a closed loop at saturation, its latency mostly queueing;
2. rate: the same GET offered at a fixed rate, open loop (bench/open_loop.py), for --duration
   seconds: at 80% of the ceiling, then at --target-rate (1,200/s, the p99 target's rate) if
   that is not above the ceiling (above it an open loop's queue only grows: not offered, and
   the target counts as missed); p50/p99/p99.9 from each request's intended send time. It
   needs the ceiling: skipping `polls` alone still measures it;
3. small jobs: --clients threads, each with its own key and the client library (client/), each
   submits --jobs-per-client small documents (16 KiB, bench/generate.py) and then polls its
   jobs, oldest first, every 0.2 s until each has succeeded: jobs/s = all jobs / wall time from
   the first submission until the last job succeeded;
4. big: one large job (--big-mb, default 300; bench/run.py's input file in bench/data/,
   generated once): `xmlconv convert --to json` alone, then the same file through the stack
   (upload, conversion waited for as Client.wait does, over the job's event stream, download),
   and the ratio of the two wall times; the two outputs must be identical;
5. streams: --streams event streams (GET /jobs/<id>/events, bench/event_streams.py) held open
   at once by the API at its default process count, --streams-per-job on each of the jobs
   (JSON of --stream-job-mb, all running at once in one more worker at nice 19, throttled to
   --stream-job-share of the time, the stack's own stopped meanwhile: see measure_streams):
   each event's delay from its write (p50/p99/p99.9), events lost, the API's CPU per event
   over --stream-seconds, and the polls/s (wrk) with the streams open against the same
   without them, jobs progressing in both; then the jobs are cancelled and every stream
   must end with its job's last event;
6. tracing: a second stack like the first with OTEL_EXPORTER_OTLP_ENDPOINT set (traces go to
   testkit/otlp_receiver.py's receiver, here), both up at once; --tracing-rounds rounds of
   polls (wrk) and small jobs (--tracing-jobs-per-client each) on each, off and on alternating:
   the figures of each, the difference, and the API's CPU per poll.

Every figure is a row of a Markdown table, and every figure with a target a PASS/FAIL line.
`--quick` runs every phase briefly (a few minutes): 4 s runs, 200 streams, fewer jobs, one
tracing round (its values are listed in --help; options given beside it win).

After each phase: how busy the machine was, the CPU seconds of this benchmark (load generator
included) and of each process of the stack, and the CPU milliseconds per poll / per job by
process, with the rate they allow on this machine's CPUs: on a machine shared with other work
the rates above vary from run to run, the CPU per unit of work much less.

With --profile DIR, py-spy (`pip install py-spy`) records the gunicorn workers during the
polls, and the Celery worker (main process and pool) and the gunicorn workers during the small
jobs: DIR gets the raw stacks (py-spy's collapsed format) and the top functions by own and
total time are printed. Everything started here is stopped on the way out (also on Ctrl-C).
Traffic goes only to 127.0.0.1. Exit status 1 when a target is missed or a measurement failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.event_streams import Streams, WriteTimes
from bench.generate import generate
from bench.open_loop import OpenLoopResult, offer
from bench.run import DATA, input_file, measure, xmlconv_command
from client import ApiError, Client
from client.retry import Backoff
from jobs import ApiKeys
from testkit import BIN, REPO
from testkit.benchmark import run_benchmark, stop_on_sigterm
from testkit.otlp_receiver import OtlpReceiver
from testkit.stack import Stack
from testkit.throttle import Throttle

# Targets (issues 12 and 21), on a 2-core machine with the load generator on it.
TARGET_POLLS_PER_S = 1500.0
TARGET_RATE = 1200.0  # status polls offered at this rate, open loop ...
TARGET_POLL_P99_MS = 100.0  # ... answered within this at p99 (from the intended send)
TARGET_JOBS_PER_S = 100.0
TARGET_BIG_RATIO = 1.2
TARGET_EVENT_P99_MS = 250.0  # an event's delay from its write, 1,000 streams open
TARGET_POLLS_WITH_STREAMS = 0.8  # polls/s with the streams open / without

RATE_OF_CEILING = 0.8  # the fixed rate reported beside the ceiling

SMALL_KIB = 16
# Between two polls of a small job: Client.wait's first pause, without its growth (which would
# make the wall time measure the backoff); a job is seen done at most this late.
POLL_PAUSE = Backoff.first
# The settings service_env() sets for the tests' sake, back to their defaults here (an empty
# value is the default): a deployment's process counts, limits and upload size.
TEST_ONLY_SETTINGS = ("WORKER_CONCURRENCY", "WORKER_HEARTBEAT_SECONDS", "API_WORKERS",
                      "API_THREADS", "LEGACY_WAIT_SECONDS", "RATE_LIMIT_PER_MINUTE",
                      "MAX_ACTIVE_JOBS", "MAX_UPLOAD_BYTES", "LOG_LEVEL")
# Each key's request rate: counted by the limiter on every request, never reached.
UNTHROTTLED_PER_MINUTE = 10_000_000

WRK_SCRIPT = """-- GET the job's status with the API key (bench/loadtest.py)
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def log(message: str) -> None:
    print(f"[loadtest {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def production_overrides() -> dict[str, str]:
    return {**{name: "" for name in TEST_ONLY_SETTINGS},
            "DEPLOY_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
            "AUTH_MODE": "api_key"}


# -- what else the machine did meanwhile


class MachineLoad:
    """CPU seconds the whole machine was busy during a phase, how much of that was this
    benchmark (its own process and children: the load generator), and each process of the
    stack (a process's reaped children, e.g. recycled gunicorn workers, count as its own)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    @staticmethod
    def _tree(pid: int) -> dict[str, float]:
        """CPU seconds of a process ("main") and of its live descendants ("children")."""
        out = {"main": 0.0, "children": 0.0}
        try:
            root = psutil.Process(pid)
            for proc in (root, *root.children(recursive=True)):
                t = proc.cpu_times()
                out["main" if proc.pid == pid else "children"] += (
                    t.user + t.system + t.children_user + t.children_system)
        except psutil.Error:
            pass
        return out

    def _roles(self) -> dict[str, float]:
        own = os.times()
        roles = {"load generator (this process, wrk)": own.user + own.system
                 + own.children_user + own.children_system}
        for service in self.stack.services():
            if not service.alive():
                continue
            tree = self._tree(service.pid)
            if service.name == "api":
                roles["api (gunicorn)"] = tree["main"] + tree["children"]
            elif service.name.startswith("worker"):
                roles[f"{service.name} main"] = tree["main"]
                roles[f"{service.name} pool"] = tree["children"]
            else:
                roles[service.name] = tree["main"] + tree["children"]
        return roles

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def __enter__(self) -> MachineLoad:
        self.t0, self.busy0, self.roles0 = time.monotonic(), self._busy(), self._roles()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.monotonic() - self.t0
        self.busy = self._busy() - self.busy0
        after = self._roles()
        self.roles = {name: after[name] - self.roles0.get(name, 0.0) for name in after}
        self.ours = sum(self.roles.values())

    def per_unit(self, count: int, unit: str) -> str:
        """CPU milliseconds per unit of work by role, and the rate they allow on this machine's
        CPUs if nothing else ran: a figure that other load on a shared machine barely moves."""
        if not count:
            return ""
        cpus = psutil.cpu_count() or 1
        split = ", ".join(f"{name} {1000 * seconds / count:.2f}"
                          for name, seconds in self.roles.items() if seconds >= 0.05)
        total = 1000 * self.ours / count
        return (f"CPU ms per {unit}: {split}; total {total:.2f} → at most "
                f"{1000 * cpus / total:,.0f} {unit}s/s on {cpus} CPUs with nothing else running")

    def describe(self) -> str:
        cpus = psutil.cpu_count() or 1
        others = max(0.0, self.busy - self.ours)
        split = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.roles.items()
                          if seconds >= 0.05)
        return (f"{self.seconds:.0f} s: machine {100 * self.busy / (cpus * self.seconds):.0f}% "
                f"busy of {cpus} CPUs; this benchmark {self.ours:.1f} CPU-s ({split}), "
                f"other processes {others:.1f} CPU-s "
                f"({100 * others / (cpus * self.seconds):.0f}% of the machine)")


# -- profiles (py-spy)


class Profiler:
    """py-spy record (raw collapsed stacks) on a set of processes for one phase."""

    def __init__(self, directory: Path | None, phase: str) -> None:
        self.directory = directory
        self.phase = phase
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.binary = BIN / "py-spy" if (BIN / "py-spy").exists() else shutil.which("py-spy")

    def start(self, targets: dict[str, int], seconds: float) -> None:
        if self.directory is None:
            return
        if self.binary is None:
            log("--profile: py-spy is not installed (.venv/bin/pip install py-spy); no profile")
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for role, pid in targets.items():
            out = self.directory / f"{self.phase}-{role}-{pid}.txt"
            argv = [str(self.binary), "record", "--pid", str(pid), "--format", "raw",
                    "--rate", "200", "--nonblocking", "--duration", str(max(1, int(seconds))),
                    "--output", str(out)]
            popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
            self.procs.append((role, popen, out))

    def stop(self) -> None:
        for _, popen, _ in self.procs:
            if popen.poll() is None:
                popen.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        for _, popen, _ in self.procs:
            try:
                popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(timeout=10)

    def summary(self, top: int = 15) -> str:
        by_role: dict[str, list[Path]] = {}
        for role, _, out in self.procs:
            if out.exists():
                by_role.setdefault(role.rstrip("0123456789-"), []).append(out)
        return "\n".join(profile_summary(f"{self.phase}: {role}", paths, top)
                         for role, paths in by_role.items())


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", str(REPO) + "/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def profile_summary(title: str, paths: list[Path], top: int) -> str:
    """Top functions by own samples (on top of the stack) and total samples (anywhere in it)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_frame_name(f) for f in stack.split(";")]
            frames = [f for f in frames if not f.startswith("process ")]  # py-spy's pid label
            if not frames:
                continue
            samples += n
            own[frames[-1]] += n
            for name in set(frames):
                total[name] += n
    if not samples:
        return f"\n{title}: no samples"
    lines = [f"\n{title}: {samples} samples (on CPU), {len(paths)} process(es)",
             "  own%  function"]
    lines += [f"  {100 * n / samples:5.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["  total%  function"]
    lines += [f"  {100 * n / samples:6.1f}  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def api_workers(stack: Stack) -> dict[str, int]:
    return {f"api-{n}": p.pid
            for n, p in enumerate(psutil.Process(stack.api.pid).children(), 1)}


def celery_processes(stack: Stack) -> dict[str, int]:
    root = psutil.Process(stack.workers[0].pid)
    return {"worker-main": root.pid,
            **{f"worker-pool-{n}": p.pid for n, p in enumerate(root.children(), 1)}}


# -- 1. status polls (wrk)


@dataclass
class PollResult:
    requests_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    non_2xx: int = 0
    socket_errors: str = ""
    output: str = ""
    load: str = ""
    cpu: str = ""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> PollResult:
    result = PollResult(output=output)
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result.requests_per_s = float(match[1])
    if match := re.search(r"(\d+) requests in", output):
        result.requests = int(match[1])
    for percent, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        if match := re.search(rf"^\s+{percent}%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.M):
            setattr(result, attr, _ms(match[1]))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result.non_2xx = int(match[1])
    if match := re.search(r"Socket errors: (.*)", output):
        result.socket_errors = match[1].strip()
    return result


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (make loadtest does it)")
    return found


def poll_url(stack: Stack, api_key: str, source: Path) -> str:
    """The URL of a succeeded job of `api_key`'s, the one every status poll reads."""
    with Client(stack.api_url, api_key=api_key) as api:
        job = api.submit(source, format="json")
        while api.get(job)["status"] != "succeeded":
            time.sleep(0.05)
    return f"{stack.api_url}/jobs/{job['id']}"


class Wrk:
    """wrk GETting `url` with the key over `connections` keep-alive connections: the ceiling of
    status polls (a closed loop: each connection sends when its last answer came)."""

    def __init__(self, url: str, api_key: str, workdir: Path, connections: int) -> None:
        self.url, self.connections = url, connections
        self.script = workdir / f"poll-{hashlib.sha256(api_key.encode()).hexdigest()[:8]}.lua"
        self.script.write_text(WRK_SCRIPT.format(key=api_key))

    def _run(self, seconds: float) -> str:
        threads = str(min(self.connections, psutil.cpu_count() or 2))
        argv = [wrk_binary(), "-t", threads, "-c", str(self.connections), "-d", f"{seconds:g}s",
                "--latency", "-s", str(self.script), self.url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
        return done.stdout

    def warm_up(self) -> None:
        self._run(3)  # connections, the workers' first requests: not counted

    def run(self, seconds: float) -> PollResult:
        return parse_wrk(self._run(seconds))


def measure_polls(stack: Stack, wrk: Wrk, args: argparse.Namespace,
                  profile: Path | None) -> PollResult:
    wrk.warm_up()
    profiler = Profiler(profile, "polls")
    profiler.start(api_workers(stack), args.duration)
    try:
        with MachineLoad(stack) as load:
            result = wrk.run(args.duration)
    finally:
        profiler.stop()
    result.load = load.describe()
    result.cpu = load.per_unit(result.requests, "poll")
    if profile:
        print(profiler.summary(), flush=True)
    return result


# -- 1b. status polls at a fixed rate (open loop, bench/open_loop.py)


@dataclass
class RateRun:
    label: str
    rate: float
    result: OpenLoopResult | None = None
    not_offered: str = ""  # why this rate was not offered
    load: str = ""


def measure_rates(stack: Stack, url: str, api_key: str, ceiling: float,
                  args: argparse.Namespace) -> list[RateRun]:
    """Polls offered at RATE_OF_CEILING of the ceiling, then at the target's rate if the
    ceiling allows it: above its ceiling an open loop's queue only grows, and its p99 says how
    long the run lasted, not what a user waits at that rate."""
    runs = [RateRun(f"{RATE_OF_CEILING:.0%} of the ceiling", round(RATE_OF_CEILING * ceiling))]
    target = RateRun("the target's rate", args.target_rate)
    if args.target_rate > ceiling:
        target.not_offered = (f"not offered: above the ceiling ({ceiling:,.0f}/s), where an "
                              "open loop measures only its own queue")
    runs.append(target)
    headers = {"Authorization": f"Bearer {api_key}"}
    for run in runs:
        if run.not_offered or run.rate <= 0:
            run.not_offered = run.not_offered or "not offered: no ceiling measured"
            continue
        log(f"polls offered at {run.rate:,.0f}/s ({run.label}), open loop, "
            f"{args.rate_connections} connections, {args.duration:g} s")
        with MachineLoad(stack) as load:
            run.result = offer(url, headers, run.rate, args.duration, args.rate_connections)
        run.load = load.describe()
        log(f"  p50 {_fmt_ms(run.result.percentile(50))}, p99 "
            f"{_fmt_ms(run.result.percentile(99))}, p99.9 "
            f"{_fmt_ms(run.result.percentile(99.9))}; {run.load}")
    return runs


# -- 4. event streams held open (bench/event_streams.py)


@dataclass
class StreamsResult:
    streams: int = 0
    jobs: int = 0
    opened: int = 0
    per_process: list[int] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    broken: Counter[str] = field(default_factory=Counter)
    open_at_end: int = 0  # still open when the jobs were cancelled (none ended early)
    ended: int = 0  # ended by the server with their job's final event
    delays_ms: list[float] = field(default_factory=list)
    worker_lag_ms: list[float] = field(default_factory=list)  # updated_at to the publish
    unmatched: int = 0
    missed: int = 0
    window_s: float = 0.0
    window_events: int = 0
    api_cpu_s: float = 0.0
    polls_without: PollResult | None = None
    polls_with: PollResult | None = None
    polls_with_events: int = 0  # events delivered meanwhile
    poll_cpu_ms_without: float | None = None  # the API's CPU per poll: the machine's other
    poll_cpu_ms_with: float | None = None  # load moves it less than polls/s
    load: str = ""
    error: str = ""

    @property
    def cpu_ms_per_event(self) -> float | None:
        return 1000 * self.api_cpu_s / self.window_events if self.window_events else None

    def percentile(self, p: float) -> float | None:
        return OpenLoopResult(0, 0, 0, self.delays_ms).percentile(p)

    @property
    def polls_ratio(self) -> float | None:
        if self.polls_without and self.polls_with and self.polls_without.requests_per_s:
            return self.polls_with.requests_per_s / self.polls_without.requests_per_s
        return None


def _streams_per_process(stack: Stack) -> list[int]:
    """Established connections on the API's port, by gunicorn worker process."""
    counts = []
    for pid in api_workers(stack).values():
        with contextlib.suppress(psutil.Error):
            counts.append(sum(1 for c in psutil.Process(pid).net_connections(kind="tcp")
                              if c.status == psutil.CONN_ESTABLISHED
                              and c.laddr.port == stack.api_port))
    return counts


def _wait_running(stack: Stack, jobs: list[tuple[str, str]], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    running = 0
    while time.monotonic() < deadline:
        running = 0
        for job_id, key in jobs:
            with Client(stack.api_url, api_key=key) as api:
                running += api.get(job_id)["status"] == "running"
        if running == len(jobs):
            break
        time.sleep(0.5)
    return running


def _api_ms_per(load: MachineLoad, count: int) -> float | None:
    return 1000 * load.roles.get("api (gunicorn)", 0.0) / count if count else None


def _nice_tree(pid: int) -> None:
    """The process and its children at the lowest priority (its later children inherit it).
    A service runs in a session of its own, so with the kernel's autogroups (on by default)
    a process's nice counts only within its session: the session's group is niced too."""
    root = psutil.Process(pid)
    for proc in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            proc.nice(19)
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text("19")


def measure_streams(stack: Stack, registry: ApiKeys, wrk: Wrk, workdir: Path,
                    args: argparse.Namespace) -> StreamsResult:
    """args.streams streams over jobs that progress for as long as the phase lasts: JSON, all
    running at once in one more worker whose processes run at nice 19 and only
    args.stream_job_share of the time (testkit.throttle), the stack's own worker stopped
    meanwhile. On a deployment the workers have CPUs of their own; here they take little of
    what the API and the load generator leave, so that the polls beside the streams and the
    API's CPU per event are the streams' doing, not the conversions' (a URL import trickled
    by a local origin would cost no CPU at all, but DEPLOY_ENV=production refuses imports
    from private addresses). At most
    args.streams_per_job streams watch one job (its owner's key: EVENTS_MAX_PER_KEY is 100 a
    process). The polls without and with the streams both run while the jobs progress."""
    jobs_count = math.ceil(args.streams / args.streams_per_job)
    result = StreamsResult(streams=args.streams, jobs=jobs_count)
    keys_ = [registry.create(f"streams-{n}", UNTHROTTLED_PER_MINUTE, 10).api_key
             for n in range(jobs_count)]
    source = workdir / "streams.xml"
    generate(args.stream_job_mb, source, seed=21)
    log(f"event streams: {args.streams} on {jobs_count} jobs of {args.stream_job_mb} MB → "
        f"json, in a worker of {jobs_count} processes at nice 19, running "
        f"{args.stream_job_share:.1%} of the time")
    jobs: list[tuple[str, str]] = []
    importer = None
    try:
        stack.worker.stop()
        importer = stack.add_worker(WORKER_CONCURRENCY=str(jobs_count))
        _nice_tree(importer.pid)
        with Throttle(importer, share=args.stream_job_share), \
                WriteTimes(stack.client()) as written:
            for key in keys_:
                with Client(stack.api_url, api_key=key, timeout=300) as api:
                    job = api.submit(source, format="json")
                    jobs.append((job["id"], key))
            running = _wait_running(stack, jobs, 60)
            if running < len(jobs):
                result.error = f"only {running} of {len(jobs)} jobs running after 60 s"
                return result
            wrk.warm_up()
            with MachineLoad(stack) as load:
                result.polls_without = wrk.run(args.duration)
            result.poll_cpu_ms_without = _api_ms_per(load, result.polls_without.requests)
            log(f"  polls without streams: {result.polls_without.requests_per_s:,.0f}/s")
            with Streams(stack.api_url, jobs, args.streams) as streams:
                result.opened = streams.wait_open(120)
                result.refused = streams.refused
                result.per_process = _streams_per_process(stack)
                log(f"  {result.opened} streams open (by API process: {result.per_process}); "
                    f"refused attempts: {dict(result.refused) or 'none'}")
                with MachineLoad(stack) as load:
                    before = streams.delivered
                    time.sleep(args.stream_seconds)
                    result.window_events = streams.delivered - before
                result.window_s = load.seconds
                result.api_cpu_s = load.roles.get("api (gunicorn)", 0.0)
                result.load = load.describe()
                before = streams.delivered
                with MachineLoad(stack) as load:
                    result.polls_with = wrk.run(args.duration)
                result.poll_cpu_ms_with = _api_ms_per(load, result.polls_with.requests)
                result.polls_with_events = streams.delivered - before
                log(f"  polls with {streams.open_now} streams open: "
                    f"{result.polls_with.requests_per_s:,.0f}/s")
                result.open_at_end = streams.open_now
                for job_id, key in jobs:  # every stream's last event: its job cancelled
                    with Client(stack.api_url, api_key=key) as api:
                        api.cancel(job_id)
                result.ended = streams.wait_ended(30)
                result.broken = streams.errors
            result.delays_ms, result.unmatched, result.missed = streams.delays_ms(written)
            result.worker_lag_ms = written.worker_lag_ms
    finally:
        if importer is not None:
            importer.close()
        stack.worker.start()
        stack.worker.wait_ready(90)
    return result


# -- 5. tracing off and on (two stacks, same run)


@dataclass
class TracingResult:
    polls: dict[str, list[float]] = field(default_factory=lambda: {"off": [], "on": []})
    jobs: dict[str, list[float]] = field(default_factory=lambda: {"off": [], "on": []})
    # the API's CPU milliseconds per poll: what the machine's other load barely moves
    poll_cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {"off": [], "on": []})
    spans: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @staticmethod
    def change(figures: dict[str, list[float]]) -> float | None:
        """on / off - 1, of the means."""
        if not figures["off"] or not figures["on"] or not statistics.mean(figures["off"]):
            return None
        return statistics.mean(figures["on"]) / statistics.mean(figures["off"]) - 1

    @staticmethod
    def spread(figures: dict[str, list[float]]) -> float | None:
        """The largest difference between two rounds of one setting, relative to its mean:
        what this machine's noise alone moves a figure by."""
        spreads = [(max(v) - min(v)) / statistics.mean(v) for v in figures.values()
                   if len(v) > 1 and statistics.mean(v)]
        return max(spreads) if spreads else None


def measure_tracing(stack: Stack, wrk: Wrk, overrides: dict[str, str], workdir: Path,
                    args: argparse.Namespace) -> TracingResult:
    """A second stack like the first but with OTEL_EXPORTER_OTLP_ENDPOINT set (traces to a
    real OTLP/HTTP receiver here, counting spans), started beside it; then polls (wrk) and
    small jobs on each, alternating off/on, on/off, ... (a drift of the machine's load over
    the rounds falls on both)."""
    result = TracingResult()
    with OtlpReceiver(keep=False) as receiver:
        traced = Stack(workdir / "traced", workers=1, beat=True, name="traced", env={
            **overrides, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        with traced:
            registry = ApiKeys(traced.client(), overrides["SECRET_KEY"])
            poller = registry.create("poller", UNTHROTTLED_PER_MINUTE, 10).api_key
            traced_wrk = Wrk(poll_url(traced, poller, workdir / "small.xml"), poller, workdir,
                             args.connections)
            sides = {"off": (stack, wrk, ApiKeys(stack.client(), overrides["SECRET_KEY"])),
                     "on": (traced, traced_wrk, registry)}
            clients = {side: [reg.create(f"tracing-{n}", UNTHROTTLED_PER_MINUTE,
                                         args.tracing_jobs_per_client).api_key
                              for n in range(args.clients)]
                       for side, (_, _, reg) in sides.items()}
            for side in sides:
                sides[side][1].warm_up()
            for round_ in range(args.tracing_rounds):
                order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
                for side in order:
                    with MachineLoad(sides[side][0]) as load:
                        polls = sides[side][1].run(args.duration)
                    result.polls[side].append(polls.requests_per_s)
                    if polls.requests:
                        result.poll_cpu_ms[side].append(
                            1000 * load.roles.get("api (gunicorn)", 0.0) / polls.requests)
                    log(f"  tracing {side}: {polls.requests_per_s:,.0f} polls/s")
                for side in order:
                    jobs = measure_jobs(sides[side][0], clients[side], workdir / "small.xml",
                                        args.tracing_jobs_per_client, None)
                    result.jobs[side].append(jobs.per_s)
                    result.errors += jobs.errors
                    log(f"  tracing {side}: {jobs.per_s:.1f} jobs/s")
            time.sleep(6)  # the batch span processors' last exports (every 5 s)
        result.spans = Counter(receiver.counts)
    return result


# -- 2. small jobs (the client library, 16 threads)


@dataclass
class JobsResult:
    jobs: int = 0
    succeeded: int = 0
    seconds: float = 0.0
    polls: int = 0
    errors: list[str] = field(default_factory=list)
    load: str = ""
    cpu: str = ""

    @property
    def per_s(self) -> float:
        return self.succeeded / self.seconds if self.seconds and not self.errors else 0.0


def measure_jobs(stack: Stack, keys_: list[str], source: Path, per_client: int,
                 profile: Path | None) -> JobsResult:
    result = JobsResult(jobs=len(keys_) * per_client)
    lock = threading.Lock()
    start = threading.Barrier(len(keys_) + 1)
    finished_at: list[float] = []

    def client(api_key: str) -> None:
        polls = done = 0
        try:
            with Client(stack.api_url, api_key=api_key) as api:
                start.wait()
                jobs = [api.submit(source, format="json") for _ in range(per_client)]
                for job in jobs:  # oldest first: by the time one succeeded, so did most before
                    while True:
                        current = api.get(job)
                        polls += 1
                        if current["status"] == "succeeded":
                            done += 1
                            break
                        if current["status"] in ("failed", "cancelled"):
                            raise RuntimeError(f"job {job['id']} {current['status']}: "
                                               f"{current.get('error')}")
                        time.sleep(POLL_PAUSE)
        except Exception as exc:  # reported, not raised: the other clients go on
            with lock:
                result.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with lock:
                result.polls += polls
                result.succeeded += done
                finished_at.append(time.monotonic())

    threads = [threading.Thread(target=client, args=(key,), daemon=True) for key in keys_]
    for thread in threads:
        thread.start()
    profiler = Profiler(profile, "jobs")
    targets = {**celery_processes(stack), **api_workers(stack)}
    try:
        with MachineLoad(stack) as load:
            start.wait()
            t0 = time.monotonic()
            profiler.start(targets, 120)
            for thread in threads:
                thread.join(timeout=600)
            result.seconds = max(finished_at, default=t0) - t0
    finally:
        profiler.stop()
    result.load = load.describe()
    result.cpu = load.per_unit(result.succeeded, "job")
    if profile:
        print(profiler.summary(), flush=True)
    return result


# -- 3. one large job beside xmlconv convert


@dataclass
class BigResult:
    size_mb: float = 0.0
    alone_s: float | None = None
    stack_s: float | None = None
    upload_s: float | None = None
    convert_s: float | None = None
    download_s: float | None = None
    identical: bool | None = None
    error: str | None = None
    load: str = ""
    alone_cpu_s: float | None = None  # CPU seconds: a second view, which other load barely moves
    stack_cpu_s: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.alone_s and self.stack_s:
            return self.stack_s / self.alone_s
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def measure_big(stack: Stack, api_key: str, size_mb: int, workdir: Path) -> BigResult:
    result = BigResult(size_mb=size_mb)
    DATA.mkdir(parents=True, exist_ok=True)
    source = input_file(size_mb, DATA)
    alone_out, stack_out = workdir / "alone.json", workdir / "stack.json"
    with MachineLoad(stack) as alone_load:
        alone = measure([*xmlconv_command(), "convert", str(source), "-o", str(alone_out),
                         "--to", "json"], timeout=1800)
    if alone.returncode != 0:
        result.error = f"xmlconv convert failed: {alone.stderr[-500:]}"
        return result
    result.alone_s, result.alone_cpu_s = alone.seconds, alone_load.ours
    log(f"xmlconv convert alone: {alone.seconds:.1f} s, {alone_load.describe()}")
    client = Client(stack.api_url, api_key=api_key, timeout=300)
    with MachineLoad(stack) as load, client as api:
        t0 = time.monotonic()
        job = api.submit(source, format="json")
        t1 = time.monotonic()
        try:  # as a client would: told of the end over the job's event stream, not polling
            api.wait(job)
        except ApiError as exc:
            result.error = f"the job did not succeed: {exc}"
            return result
        t2 = time.monotonic()
        api.download(job, stack_out)
        t3 = time.monotonic()
    result.load = load.describe()
    result.stack_cpu_s = load.ours  # the client's upload and download included
    result.upload_s, result.convert_s, result.download_s = t1 - t0, t2 - t1, t3 - t2
    result.stack_s = t3 - t0
    result.identical = (alone_out.stat().st_size == stack_out.stat().st_size
                        and _sha256(alone_out) == _sha256(stack_out))
    for path in (alone_out, stack_out):
        path.unlink(missing_ok=True)
    return result


# -- the report


@dataclass
class Results:
    polls: PollResult | None = None
    rates: list[RateRun] | None = None
    jobs: JobsResult | None = None
    big: BigResult | None = None
    streams: StreamsResult | None = None
    tracing: TracingResult | None = None


class Table:
    """The report: a Markdown row per figure, and a PASS/FAIL line per figure with a target."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.verdicts: list[str] = []

    def row(self, figure: str, target: str, measured: str, met: bool | None) -> None:
        self.rows.append((figure, target, measured,
                          "–" if met is None else ("yes" if met else "**no**")))
        if met is not None:
            self.verdicts.append(f"{'PASS' if met else 'FAIL'}: {figure}: {measured}"
                                 + (f" (target {target})" if target else ""))

    @property
    def met(self) -> bool:
        return not any(line.startswith("FAIL") for line in self.verdicts)

    def markdown(self) -> str:
        lines = ["| figure | target | measured | met? |", "|---|---|---:|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows]
        return "\n".join(lines)


def _percentiles(values: OpenLoopResult | StreamsResult) -> str:
    return " / ".join(_fmt_ms(values.percentile(p)) for p in (50, 99, 99.9))


def table(results: Results, args: argparse.Namespace) -> Table:
    t = Table()
    row = t.row
    polls, jobs, big = results.polls, results.jobs, results.big
    if polls is not None:
        ok = polls.requests > 0 and polls.non_2xx == 0 and not polls.socket_errors
        label = f"status polls/s, the ceiling (wrk, closed loop, {args.connections} connections)"
        row(label, f"≥ {TARGET_POLLS_PER_S:,.0f}", f"{polls.requests_per_s:,.0f}",
            ok and polls.requests_per_s >= TARGET_POLLS_PER_S)
        row("status poll p50 / p99 at the ceiling (queueing included)", "",
            f"{_fmt_ms(polls.p50_ms)} / {_fmt_ms(polls.p99_ms)}", None)
        if not ok:
            row("status polls: errors", "0", f"non-2xx {polls.non_2xx}; "
                f"{polls.socket_errors or 'no socket errors'}", False)
    for run in results.rates or ():
        label = (f"status polls offered at {run.rate:,.0f}/s ({run.label}; open loop, "
                 f"{args.rate_connections} connections): p50 / p99 / p99.9")
        is_target = run.label == "the target's rate"
        target = f"p99 < {TARGET_POLL_P99_MS:g} ms" if is_target else ""
        if run.result is None:
            row(label, target, run.not_offered, False if is_target else None)
            continue
        r = run.result
        p99 = r.percentile(99)
        lag = r.percentile(99, r.lag_ms)
        row(label, target, f"{_percentiles(r)} ({r.answered_per_s:,.0f}/s answered; "
            f"the generator's own lag p99 {_fmt_ms(lag)})",
            (r.ok and p99 is not None and p99 < TARGET_POLL_P99_MS) if is_target else None)
        if not r.ok:
            row(f"polls at {run.rate:,.0f}/s: errors", "0",
                f"{dict(r.errors) or 'none'}; {r.unanswered} unanswered", False)
    if jobs is not None:
        row(f"small jobs/s ({args.clients} clients, {jobs.jobs} jobs of {SMALL_KIB} KiB)",
            f"≥ {TARGET_JOBS_PER_S:g}", f"{jobs.per_s:.1f} ({jobs.succeeded} in "
            f"{jobs.seconds:.1f} s)", not jobs.errors and jobs.per_s >= TARGET_JOBS_PER_S)
        if jobs.errors:
            row("small jobs: errors", "0", f"{len(jobs.errors)}: {jobs.errors[0][:80]}", False)
    if big is not None:
        if big.error:
            row(f"{big.size_mb} MB job", "", f"FAILED: {big.error[:100]}", False)
        else:
            row(f"`xmlconv convert` alone, {big.size_mb} MB → json", "",
                f"{big.alone_s:.1f} s", None)
            row(f"{big.size_mb} MB job through the stack (upload + convert + download)", "",
                f"{big.stack_s:.1f} s ({big.upload_s:.1f} + {big.convert_s:.1f} + "
                f"{big.download_s:.1f})", None)
            row("stack / alone", f"≤ {TARGET_BIG_RATIO:g}×", f"{big.ratio:.2f}×",
                big.ratio is not None and big.ratio <= TARGET_BIG_RATIO)
            if big.alone_cpu_s and big.stack_cpu_s:
                row("CPU seconds: stack (client included) / alone", "",
                    f"{big.stack_cpu_s:.1f} / {big.alone_cpu_s:.1f} = "
                    f"{big.stack_cpu_s / big.alone_cpu_s:.2f}×", None)
            row("result identical to `xmlconv convert`", "yes",
                "yes" if big.identical else "no", bool(big.identical))
    if results.streams is not None:
        _streams_rows(results.streams, row)
    if results.tracing is not None:
        _tracing_rows(results.tracing, row)
    return t


def _streams_rows(st: StreamsResult, row) -> None:
    if st.error:
        row(f"{st.streams} event streams", "", f"FAILED: {st.error}", False)
        return
    refused = sum(st.refused.values())
    early = st.opened - st.open_at_end
    row(f"event streams open at once ({st.jobs} jobs progressing)", f"{st.streams:,}",
        f"{st.opened:,} (connections by API process {'/'.join(map(str, st.per_process))}; "
        f"{refused} refused attempts, tried again"
        + (f"; {early} ended before the phase did: raise --stream-job-mb" if early else "")
        + ")", st.opened == st.streams and early == 0)
    lag = OpenLoopResult(0, 0, 0, st.worker_lag_ms)
    row("event delay from its write (its publish), p50 / p99 / p99.9",
        f"p99 ≤ {TARGET_EVENT_P99_MS:g} ms",
        f"{_percentiles(st)} ({len(st.delays_ms):,} events; the niced worker's own lag from "
        f"stamping a change to writing it, not counted: p99 {_fmt_ms(lag.percentile(99))})",
        bool(st.delays_ms) and st.percentile(99) <= TARGET_EVENT_P99_MS)
    row("events lost (published after a stream opened, never received on it)", "0",
        f"{st.missed} ({st.ended:,} streams ended by their job's last event; "
        f"{st.unmatched} events without a write seen; broken: {dict(st.broken) or 'none'})",
        st.missed == 0 and not st.broken and st.ended == st.opened)
    per_event = st.cpu_ms_per_event
    row("API CPU per event delivered", "",
        "-" if per_event is None else f"{per_event:.3f} ms ({st.api_cpu_s:.2f} CPU-s for "
        f"{st.window_events:,} events in {st.window_s:.0f} s)", None)
    if st.polls_without and st.polls_with:
        ratio = st.polls_ratio or 0.0
        row("status polls/s with the streams open / without (jobs progressing in both)",
            f"≥ {TARGET_POLLS_WITH_STREAMS:.0%}",
            f"{st.polls_with.requests_per_s:,.0f} / {st.polls_without.requests_per_s:,.0f}"
            f" = {ratio:.0%} ({st.polls_with_events:,} events delivered meanwhile; the API's "
            f"CPU per poll {_fmt_ms(st.poll_cpu_ms_with, 3)} / "
            f"{_fmt_ms(st.poll_cpu_ms_without, 3)})", ratio >= TARGET_POLLS_WITH_STREAMS)


def _tracing_rows(tr: TracingResult, row) -> None:
    def figures(values: dict[str, list[float]], fmt: str) -> str:
        change, spread = TracingResult.change(values), TracingResult.spread(values)
        text = (f"off {' '.join(format(v, fmt) for v in values['off'])}, "
                f"on {' '.join(format(v, fmt) for v in values['on'])}")
        if change is not None:
            text += f"; on {change:+.1%}"
        if spread is not None:
            text += f" (rounds of one setting differ by up to {spread:.0%})"
        return text

    rounds = len(tr.polls["off"])
    row(f"tracing off / on: status polls/s (wrk, {rounds} rounds)", "",
        figures(tr.polls, ",.0f"), None)
    row("tracing off / on: the API's CPU ms per poll", "", figures(tr.poll_cpu_ms, ".2f"), None)
    row(f"tracing off / on: small jobs/s ({rounds} rounds)", "", figures(tr.jobs, ".1f"), None)
    spans = ", ".join(f"{name} {count:,}" for name, count in sorted(tr.spans.items()))
    row("spans exported with tracing on (the 'on' figures are traced)", "api and worker",
        spans or "none", tr.spans.get("xmlconv-api", 0) > 0 and any(
            "worker" in name for name in tr.spans) and not tr.errors)


def _fmt_ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f} ms"


PHASES = ("polls", "rate", "jobs", "big", "streams", "tracing")
# --quick: every phase, briefly (a few minutes in all).
QUICK = {"duration": 4, "jobs_per_client": 5, "big_mb": 20, "streams": 200, "stream_job_mb": 64,
         "stream_seconds": 4, "tracing_rounds": 1, "tracing_jobs_per_client": 3}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="short runs and fewer streams: " + ", ".join(
                            f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()))
    parser.add_argument("--duration", type=float, default=20,
                        help="seconds of each polls run, wrk's or the open loop's (default 20)")
    parser.add_argument("--connections", type=int, default=32,
                        help="wrk connections (default 32)")
    parser.add_argument("--rate-connections", type=int, default=64,
                        help="the open loop's connections (default 64)")
    parser.add_argument("--target-rate", type=float, default=TARGET_RATE,
                        help=f"polls/s offered for the p99 target (default {TARGET_RATE:g})")
    parser.add_argument("--clients", type=int, default=16, help="small-job clients (16)")
    parser.add_argument("--jobs-per-client", type=int, default=30,
                        help="small jobs per client (default 30)")
    parser.add_argument("--big-mb", type=int, default=300, help="large job's size (300)")
    parser.add_argument("--streams", type=int, default=1000,
                        help="event streams held open at once (default 1000)")
    parser.add_argument("--streams-per-job", type=int, default=100,
                        help="streams watching one job (default 100, EVENTS_MAX_PER_KEY)")
    parser.add_argument("--stream-job-mb", type=float, default=128,
                        help="input of each job the streams watch (default 128): its "
                             "conversion must outlast the phase")
    parser.add_argument("--stream-job-share", type=float, default=0.01,
                        help="of the time the streams' jobs run (default 0.01)")
    parser.add_argument("--stream-seconds", type=float, default=20,
                        help="seconds of events counted against the API's CPU (default 20)")
    parser.add_argument("--tracing-rounds", type=int, default=2,
                        help="off/on rounds of the tracing phase (default 2)")
    parser.add_argument("--tracing-jobs-per-client", type=int, default=10,
                        help="small jobs per client in each tracing round (default 10)")
    parser.add_argument("--skip", default="", help="comma-separated: " + ", ".join(PHASES))
    parser.add_argument("--profile", type=Path, help="py-spy profiles into this directory")
    parser.add_argument("--workdir", type=Path, help="logs and data (default: a temp dir)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the stack other than its default (repeatable), "
                             "to compare settings, e.g. --set API_WORKERS=3")
    if "--quick" in (argv if argv is not None else sys.argv[1:]):
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    try:
        args.set = dict(item.split("=", 1) for item in args.set)
    except ValueError:
        parser.error("--set takes NAME=VALUE")
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if args.skip - set(PHASES):
        parser.error(f"--skip takes {', '.join(PHASES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if {"polls", "rate", "streams", "tracing"} - args.skip:
        wrk_binary()
    stop_on_sigterm()
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="loadtest-")) if temporary else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    profile = args.profile.resolve() if args.profile else None
    generate(SMALL_KIB / 1024, workdir / "small.xml", seed=12)
    log(f"work directory {workdir}; load average {os.getloadavg()[0]:.2f}"
        + (f"; settings {args.set}" if args.set else ""))

    overrides = {**production_overrides(), **args.set}
    stack = Stack(workdir, workers=1, beat=True, name="loadtest", env=overrides)
    results = Results()
    failed = True
    try:
        log("starting redis-server, a worker, beat and the API (DEPLOY_ENV=production)")
        stack.start()
        registry = ApiKeys(stack.client(), overrides["SECRET_KEY"])
        poller = registry.create("poller", UNTHROTTLED_PER_MINUTE, 10).api_key
        url = poll_url(stack, poller, workdir / "small.xml")
        wrk = Wrk(url, poller, workdir, args.connections)
        if {"polls", "rate"} - args.skip:  # the fixed rates are fractions of this ceiling
            log(f"status polls: wrk, {args.connections} connections, {args.duration:g} s")
            polls = results.polls = measure_polls(stack, wrk, args, profile)
            log(f"{polls.requests_per_s:.0f} polls/s, p50 {_fmt_ms(polls.p50_ms)}, p99 "
                f"{_fmt_ms(polls.p99_ms)}; {polls.load}")
            if "rate" not in args.skip:
                results.rates = measure_rates(stack, url, poller, polls.requests_per_s, args)
        if "jobs" not in args.skip:
            keys_ = [registry.create(f"client-{n}", UNTHROTTLED_PER_MINUTE,
                                     args.jobs_per_client).api_key
                     for n in range(1, args.clients + 1)]
            log(f"small jobs: {args.clients} clients x {args.jobs_per_client} jobs")
            jobs = results.jobs = measure_jobs(stack, keys_, workdir / "small.xml",
                                               args.jobs_per_client, profile)
            log(f"{jobs.per_s:.1f} jobs/s, {jobs.polls} polls; {jobs.load}")
        if "big" not in args.skip:
            log(f"{args.big_mb} MB job: xmlconv convert alone, then through the stack")
            big = results.big = measure_big(stack, poller, args.big_mb, workdir)
            if big.load:
                log(f"{big.load}")
        if "streams" not in args.skip:
            results.streams = measure_streams(stack, registry, wrk, workdir, args)
        if "tracing" not in args.skip:
            log(f"tracing off and on: a second stack with OTEL_EXPORTER_OTLP_ENDPOINT set, "
                f"{args.tracing_rounds} rounds")
            results.tracing = measure_tracing(stack, wrk, overrides, workdir, args)
        report = table(results, args)
        print(report.markdown(), flush=True)
        print("\n" + "\n".join(report.verdicts), flush=True)
        if results.polls:
            print(f"\nwrk:\n{results.polls.output.rstrip()}")
        loads = [("polls", results.polls), ("small jobs", results.jobs),
                 ("large job", results.big), ("event streams", results.streams),
                 *((f"polls at {run.rate:,.0f}/s", run) for run in results.rates or ())]
        for name, result in loads:
            if result is not None and result.load:
                print(f"load during {name}: {result.load}")
            if result is not None and getattr(result, "cpu", ""):
                print(f"  {result.cpu}")
        failed = not report.met
        print(f"\n{'PASS' if report.met else 'FAIL'}: logs in {workdir}"
              + (" (removed)" if temporary else ""), flush=True)
    finally:
        stack.stop()
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    run_benchmark(main)
