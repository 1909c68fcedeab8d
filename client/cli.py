"""`xmlconv`'s commands (entered through client/main.py). `submit`, `status`, `wait`, `download`,
`cancel` and `jobs` talk to a server through client.Client; `convert` goes unchanged to the
converter's own CLI, converter.cli.main, imported only then. Every command ends with the same
ExitStatus for the same failure (converter/exit_status.py), its error as one JSON line on stderr.

A thin layer: parsing, printing and exit statuses here, everything else in the library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from converter.errors import INPUT_NOT_FOUND, error_body, io_error
from converter.exit_status import ExitStatus
from optionspec.flags import OptionParser, add_option_flags, add_version_flag, options_from_args

from .api import DEFAULT_URL, Client, Job
from .errors import JOB_CANCELLED, ApiError, JobFailed, ServerUnreachable
from .main import convert
from .options import FORMATS
from .progress import reporter

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
STOPPED = ("failed", "cancelled")
ENV_URL = "XMLCONV_URL"
ENV_API_KEY = "XMLCONV_API_KEY"

EPILOG = f"""\
server: --url, else ${ENV_URL}, else {DEFAULT_URL}; API key: --api-key, else ${ENV_API_KEY}.
progress (upload, conversion, download) goes to stderr: bars on a terminal, plain
"xmlconv: …" lines otherwise, nothing with --quiet.

exit statuses (the same for convert; each failure prints one JSON line on stderr,
{{"error": {{"code", "message", "details"}}}}, plus "status" for an HTTP answer):
  0  done (submit --wait, wait: the job succeeded)
  1  the conversion failed (XML_PARSE_ERROR, EMPTY_INPUT, …), here or as the job
  2  usage: bad arguments, or an option's value (INVALID_OPTION)
  3  the server refused the request (UNAUTHENTICATED, JOB_NOT_FOUND, …)
  4  the server is unavailable: no answer (SERVER_UNREACHABLE, TIMEOUT), or 502/503/504
  5  the job was cancelled (JOB_CANCELLED)
  6  a local file: the input does not exist (INPUT_NOT_FOUND), or cannot be read or
     written (IO_ERROR)
"""


class CommandError(Exception):
    """A failure met here rather than on the server: its exit status and its error."""

    def __init__(self, status: ExitStatus, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.status = status
        self.body = body


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
                        help="XML file, or - for standard input (required unless --from-url)")
    # Not --url: that is every command's server address.
    submit.add_argument("--from-url", dest="input_url", metavar="URL",
                        help="instead of FILE: an http(s) URL the server fetches the XML from "
                             "(nothing is uploaded from here)")
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
    wait = command("wait", "wait until a job finishes; print its line (exit 0: it succeeded)")
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
    """One line: id, status, percent ("-" once failed or cancelled: the job has no progress
    to show), format, input file name (and error code)."""
    percent = (job.get("progress") or {}).get("percent")
    shown = isinstance(percent, (int, float)) and job.get("status") not in STOPPED
    parts = [job.get("id", "?"), job.get("status", "?"), f"{percent:.1f}%" if shown else "-",
             job.get("format", "?"), (job.get("input") or {}).get("filename") or "-"]
    if job.get("tag"):
        parts.append(f"tag={job['tag']}")
    if job.get("error"):
        parts.append(str(job["error"].get("code")))
    return "\t".join(str(part) for part in parts)


def _fail(status: ExitStatus, body: dict[str, Any]) -> ExitStatus:
    """The error as one JSON line on stderr (the last line there), and the status to exit with."""
    sys.stderr.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stderr.flush()
    return status


def exit_status(error: ApiError) -> ExitStatus:
    """The same status as `xmlconv convert` for a failure both meet (a conversion error, an
    option's value), whether the server refused the request or the job failed."""
    if error.code == JOB_CANCELLED:
        return ExitStatus.CANCELLED
    named = ExitStatus.of(error.code)
    if named is not None:
        return named
    if isinstance(error, JobFailed):  # outside the converter: TIME_LIMIT_EXCEEDED, WORKER_LOST
        return ExitStatus.ERROR
    if isinstance(error, ServerUnreachable) or error.status in (502, 503, 504):
        return ExitStatus.SERVER_UNAVAILABLE
    return ExitStatus.API_ERROR


# -- commands


def _metadata(raw: str | None) -> dict | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CommandError(ExitStatus.USAGE,
                           error_body("INVALID_REQUEST", "--metadata must be a JSON object"))
    return value


def _wait(api: Client, job: Job | str, out: Console, *, show: Callable[[Job], str] | None
          ) -> Job:
    """The succeeded job, else JobFailed; `show`: print the job's line (or JSON) either way."""
    with out.progress("convert", in_bytes=False) as bar:
        try:
            job = api.wait(job, progress=bar)
        except JobFailed as failed:
            bar.stop(str(failed.job.get("status") or "failed"))
            if show:
                out.job(failed.job, show)
            raise
    if show:
        out.job(job, show)
    return job


def _download(api: Client, job: Job | str, output: str | None, out: Console) -> None:
    with out.progress("download", in_bytes=True) as bar:
        if output:
            api.download(job, output, progress=bar)
        else:
            api.download(job, sys.stdout.buffer, progress=bar)
            sys.stdout.buffer.flush()


def run_submit(api: Client, args: argparse.Namespace, out: Console) -> int:
    metadata = _metadata(args.metadata)
    if args.input_url is not None:
        if args.file is not None or args.gzip:
            raise CommandError(ExitStatus.USAGE, error_body(
                "INVALID_REQUEST", "give either FILE or --from-url (and --gzip only with FILE)"))
        job = api.submit_url(args.input_url, args.format, options_from_args(args), tag=args.tag,
                             metadata=metadata, webhook_url=args.webhook_url,
                             idempotency_key=args.idempotency_key)
        return _after_submit(api, job, args, out)
    if args.file == "-":
        source: Any = sys.stdin.buffer
    elif os.path.isfile(args.file):
        source = args.file
    else:
        raise CommandError(ExitStatus.FILE_ERROR,
                           error_body(INPUT_NOT_FOUND, f"no such file: {args.file}"))
    with out.progress("upload", in_bytes=True) as bar:
        job = api.submit(source, args.format, options_from_args(args), tag=args.tag,
                         metadata=metadata, webhook_url=args.webhook_url,
                         idempotency_key=args.idempotency_key, gzip=args.gzip, progress=bar)
    return _after_submit(api, job, args, out)


def _after_submit(api: Client, job: Job, args: argparse.Namespace, out: Console) -> int:
    if not (args.wait or args.output):
        out.job(job, lambda job: job["id"])
        return ExitStatus.SUCCESS
    # With --json, stdout is the job's (printed once it finished, a result needs -o);
    # without, stdout is the result's.
    job = _wait(api, job, out, show=summary if out.json else None)
    if args.output or not out.json:
        _download(api, job, args.output, out)
    return ExitStatus.SUCCESS


def run_status(api: Client, args: argparse.Namespace, out: Console) -> int:
    out.job(api.get(args.id), summary)
    return ExitStatus.SUCCESS


def run_wait(api: Client, args: argparse.Namespace, out: Console) -> int:
    _wait(api, args.id, out, show=summary)
    return ExitStatus.SUCCESS


def run_download(api: Client, args: argparse.Namespace, out: Console) -> int:
    _download(api, args.id, args.output, out)
    return ExitStatus.SUCCESS


def run_cancel(api: Client, args: argparse.Namespace, out: Console) -> int:
    job = api.cancel(args.id)
    if out.json:
        out.job(job, summary)  # null: a finished job, now deleted
    else:
        out.line(summary(job) if job is not None else f"{args.id}\tdeleted")
    return ExitStatus.SUCCESS


def run_jobs(api: Client, args: argparse.Namespace, out: Console) -> int:
    for job in api.jobs(status=args.status, tag=args.tag, limit=args.limit):
        out.job(job, summary)
    return ExitStatus.SUCCESS


RUN = {"submit": run_submit, "status": run_status, "wait": run_wait,
       "download": run_download, "cancel": run_cancel, "jobs": run_jobs}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command == "convert":
        return convert(["convert", *args.rest])  # after global flags: `xmlconv -q convert`
    out = Console(args)
    url = getattr(args, "url", None) or os.environ.get(ENV_URL) or DEFAULT_URL
    api_key = getattr(args, "api_key", None) or os.environ.get(ENV_API_KEY) or None
    api = Client(url, api_key, timeout=getattr(args, "timeout", 30.0))
    try:
        return RUN[args.command](api, args, out)
    except CommandError as exc:
        return _fail(exc.status, exc.body)
    except ApiError as exc:
        return _fail(exit_status(exc), exc.envelope())
    except OSError as exc:  # reading the input or writing the result, here
        return _fail(ExitStatus.FILE_ERROR, io_error(exc))
    finally:
        api.close()


if __name__ == "__main__":
    raise SystemExit(main())
