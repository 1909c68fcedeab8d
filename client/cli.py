"""`xmlconv`: the one command line. `submit`, `status`, `wait`, `download`, `cancel` and `jobs`
talk to a server through client.Client; `convert` (and anything else this module does not
know) goes unchanged to the converter's own CLI, converter.cli.main, imported only then.

A thin layer: parsing, printing and exit codes here, everything else in the library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from optionspec.flags import OptionParser, add_option_flags, add_version_flag, options_from_args

from .api import DEFAULT_URL, Client, Job
from .errors import ApiError, JobFailed
from .options import FORMATS
from .progress import reporter

COMMANDS = ("submit", "status", "wait", "download", "cancel", "jobs")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ENV_URL = "XMLCONV_URL"
ENV_API_KEY = "XMLCONV_API_KEY"

EXIT_OK = 0  # done (for submit --wait and wait: the job succeeded)
EXIT_JOB_FAILED = 1  # the job failed or was cancelled: its error as one JSON line on stderr
EXIT_USAGE = 2  # bad arguments, or a local file that cannot be read or written
EXIT_API = 3  # the server is unreachable, or refused the request (an API error, 4xx/5xx)

EPILOG = f"""\
server: --url, else ${ENV_URL}, else {DEFAULT_URL}; API key: --api-key, else ${ENV_API_KEY}.
progress (upload, conversion, download) goes to stderr: bars on a terminal, plain
"xmlconv: …" lines otherwise, nothing with --quiet.

exit codes:
  0  done (submit --wait, wait: the job succeeded)
  1  the job failed or was cancelled; its error is printed on stderr as one JSON line,
     {{"error": {{"code": "XML_PARSE_ERROR", "message": "…",
                "details": {{"line": 3, "column": 7, "job_id": "…"}}}}}}
  2  usage: bad arguments, or a local file that cannot be read or written
  3  the server is unreachable, or refused the request (an API error, 4xx/5xx);
     printed on stderr as {{"error": {{"code", "message", "details", "status"}}}}
"""


class UsageError(Exception):
    """Arguments that parse but cannot be used (exit 2, reported like an API error)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _common() -> argparse.ArgumentParser:
    """Options that every command takes, before or after its name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help=f"the API's base URL (default ${ENV_URL}, else {DEFAULT_URL})")
    group.add_argument("--api-key", default=argparse.SUPPRESS,
                       help=f"the API key, sent as a Bearer token (default ${ENV_API_KEY})")
    group.add_argument("--timeout", type=float, default=argparse.SUPPRESS, metavar="SECONDS",
                       help="how long to wait for each answer of the server (default 30)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print the job (jobs: one per line) as JSON on stdout")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress on stderr")
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common()
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="xmlconv", parents=[common], formatter_class=raw, epilog=EPILOG,
        description="Convert XML, streaming: here (convert) or on an its-convert-xml server.")
    add_version_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=OptionParser)

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help, epilog=EPILOG,
                                   description=description or help, formatter_class=raw)

    convert = commands.add_parser("convert", add_help=False,
                                  help="convert one XML file here, without a server "
                                       "(xmlconv convert --help)")
    convert.add_argument("rest", nargs=argparse.REMAINDER)

    submit = command("submit", "upload an XML file to the server as a conversion job",
                     "Upload FILE (streamed) and queue its conversion. Prints the job's id\n"
                     "(--json: the job). With --wait or -o, waits for the job and writes the\n"
                     "result to OUTPUT (default: standard output), as `xmlconv convert` does.")
    # nargs="?" only so that --force-list can give FILE back (optionspec/flags.py); a missing
    # FILE is still an error.
    submit.add_argument("file", metavar="FILE", nargs="?",
                        help="XML file, or - for standard input (required)")
    submit.add_argument("--to", dest="format", default="json", choices=FORMATS,
                        help="output format (default json)")
    add_option_flags(submit.add_argument_group("conversion options (as in xmlconv convert)"),
                     positional="file")
    job = submit.add_argument_group("job")
    job.add_argument("--tag", help="a label to find the job by (xmlconv jobs --tag)")
    job.add_argument("--metadata", metavar="JSON", help="a JSON object kept with the job")
    job.add_argument("--webhook-url", metavar="URL", help="called when the job finishes")
    job.add_argument("--idempotency-key", metavar="KEY",
                     help="a retried submission with the same key returns the first job "
                          "(default: a new one for each run)")
    job.add_argument("--gzip", action="store_true", help="compress the upload on the wire")
    job.add_argument("--wait", action="store_true",
                     help="wait for the job, then download its result")
    job.add_argument("-o", "--output", help="result file (implies --wait; default with "
                                            "--wait: standard output)")

    status = command("status", "show a job")
    status.add_argument("id", metavar="ID")
    wait = command("wait", "wait until a job finishes (exit 0 succeeded, 1 failed)")
    wait.add_argument("id", metavar="ID")
    download = command("download", "download a finished job's result")
    download.add_argument("id", metavar="ID")
    download.add_argument("-o", "--output", help="result file (default: standard output)")
    cancel = command("cancel", "cancel a queued or running job, or delete a finished one")
    cancel.add_argument("id", metavar="ID")
    jobs = command("jobs", "list your jobs, newest first")
    jobs.add_argument("--status", choices=STATUSES)
    jobs.add_argument("--tag")
    jobs.add_argument("--limit", type=_positive, metavar="N", help="at most N jobs (default all)")
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text!r}")
    return int(text)


# -- output


class Console:
    """Where the command's output goes: stdout for results, stderr for progress and errors."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json = getattr(args, "json", False)
        self.quiet = getattr(args, "quiet", False)

    def progress(self, label: str, *, in_bytes: bool):
        return reporter(label, sys.stderr, in_bytes=in_bytes, quiet=self.quiet)

    def line(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def job(self, job: Job | None, text: Callable[[Job], str]) -> None:
        if self.json:
            self.line(json.dumps(job, ensure_ascii=False))
        elif job is not None:
            self.line(text(job))


def summary(job: Job) -> str:
    """One line: id, status, percent, format, input file name (and error code)."""
    percent = (job.get("progress") or {}).get("percent")
    parts = [job.get("id", "?"), job.get("status", "?"),
             f"{percent:.1f}%" if isinstance(percent, (int, float)) else "-",
             job.get("format", "?"), (job.get("input") or {}).get("filename") or "-"]
    if job.get("tag"):
        parts.append(f"tag={job['tag']}")
    if job.get("error"):
        parts.append(str(job["error"].get("code")))
    return "\t".join(str(part) for part in parts)


def _error_line(error: dict[str, Any]) -> None:
    sys.stderr.write(json.dumps({"error": error}, ensure_ascii=False) + "\n")
    sys.stderr.flush()


# -- commands


def _metadata(raw: str | None) -> dict | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UsageError("INVALID_REQUEST", "--metadata must be a JSON object")
    return value


def _wait(api: Client, job: Job | str, out: Console) -> Job:
    with out.progress("convert", in_bytes=False) as bar:
        return api.wait(job, progress=bar)


def _download(api: Client, job: Job | str, output: str | None, out: Console) -> None:
    with out.progress("download", in_bytes=True) as bar:
        if output:
            api.download(job, output, progress=bar)
        else:
            api.download(job, sys.stdout.buffer, progress=bar)
            sys.stdout.buffer.flush()


def run_submit(api: Client, args: argparse.Namespace, out: Console) -> int:
    metadata = _metadata(args.metadata)
    if args.file == "-":
        source: Any = sys.stdin.buffer
    elif os.path.isfile(args.file):
        source = args.file
    else:
        raise UsageError("INPUT_NOT_FOUND", f"no such file: {args.file}")
    with out.progress("upload", in_bytes=True) as bar:
        job = api.submit(source, args.format, options_from_args(args), tag=args.tag,
                         metadata=metadata, webhook_url=args.webhook_url,
                         idempotency_key=args.idempotency_key, gzip=args.gzip, progress=bar)
    if not (args.wait or args.output):
        out.job(job, lambda job: job["id"])
        return EXIT_OK
    job = _wait(api, job, out)
    if args.output or not out.json:  # with --json, stdout is the job's: a result needs -o
        _download(api, job, args.output, out)
    if out.json:
        out.job(job, summary)
    return EXIT_OK


def run_status(api: Client, args: argparse.Namespace, out: Console) -> int:
    out.job(api.get(args.id), summary)
    return EXIT_OK


def run_wait(api: Client, args: argparse.Namespace, out: Console) -> int:
    out.job(_wait(api, args.id, out), summary)
    return EXIT_OK


def run_download(api: Client, args: argparse.Namespace, out: Console) -> int:
    _download(api, args.id, args.output, out)
    return EXIT_OK


def run_cancel(api: Client, args: argparse.Namespace, out: Console) -> int:
    job = api.cancel(args.id)
    if out.json:
        out.job(job, summary)  # null: a finished job, now deleted
    else:
        out.line(summary(job) if job is not None else f"{args.id}\tdeleted")
    return EXIT_OK


def run_jobs(api: Client, args: argparse.Namespace, out: Console) -> int:
    for job in api.jobs(status=args.status, tag=args.tag, limit=args.limit):
        out.job(job, summary)
    return EXIT_OK


RUN = {"submit": run_submit, "status": run_status, "wait": run_wait,
       "download": run_download, "cancel": run_cancel, "jobs": run_jobs}


def _converter(argv: list[str]) -> int:
    from converter.cli import main as convert_main

    return convert_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        return _converter(argv)  # `convert …`, exactly as converter.cli has always run it
    args = _parser().parse_args(argv)
    if args.command == "convert":
        return _converter(["convert", *args.rest])
    out = Console(args)
    url = getattr(args, "url", None) or os.environ.get(ENV_URL) or DEFAULT_URL
    api_key = getattr(args, "api_key", None) or os.environ.get(ENV_API_KEY) or None
    api = Client(url, api_key, timeout=getattr(args, "timeout", 30.0))
    try:
        return RUN[args.command](api, args, out)
    except UsageError as exc:
        _error_line({"code": exc.code, "message": exc.message})
        return EXIT_USAGE
    except JobFailed as exc:
        _error_line(exc.to_dict())
        return EXIT_JOB_FAILED
    except ApiError as exc:
        _error_line(exc.to_dict())
        return EXIT_API
    except OSError as exc:  # reading the input or writing the result, here
        where = f"{exc.filename}: " if exc.filename else ""
        _error_line({"code": "IO_ERROR", "message": f"{where}{exc.strerror or exc}"})
        return EXIT_USAGE
    finally:
        api.close()


if __name__ == "__main__":
    raise SystemExit(main())
