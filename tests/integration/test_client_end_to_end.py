"""The Python client and the `xmlconv` server commands against the real stacks: the bytes are
`xmlconv convert`'s, errors and exit codes are as documented (docs/client.md)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from client import ApiError, Client, JobFailed
from converter.exit_status import ExitStatus
from testkit import BIN, REPO
from testkit.waiting import free_port

XMLCONV = str(BIN / "xmlconv")
MALFORMED = b"<a><b></a>"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from bench.generate import generate

    root = tmp_path_factory.mktemp("client")
    small = root / "orders.xml"
    generate(0.25, small)
    slow = root / "slow.xml"
    generate(40, slow)  # long enough to be cancelled before it finishes
    malformed = root / "broken.xml"
    malformed.write_bytes(MALFORMED)
    return {"small": small, "slow": slow, "malformed": malformed}


def xmlconv(*args: str, url: str, api_key: str | None = None, stdin: bytes | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMLCONV_")}
    env["XMLCONV_URL"] = url
    if api_key is not None:
        env["XMLCONV_API_KEY"] = api_key
    return subprocess.run([XMLCONV, *args], env=env, input=stdin, capture_output=True,
                          cwd=cwd or REPO, timeout=120)


def error_line(stderr: bytes) -> dict:
    """The one JSON line on stderr (any other lines are plain progress, `xmlconv: …`)."""
    lines = stderr.decode().splitlines()
    payloads = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(payloads) == 1 and lines[-1].startswith("{"), stderr
    assert list(payloads[0]) == ["error"]
    return payloads[0]["error"]


# ------------------------------------------------------------------------------ the library


@pytest.mark.parametrize(("fmt", "gzip"), [("json", False), ("jsonl", True), ("csv", False),
                                           ("yaml", True), ("text", False)])
def test_library_convert_gives_the_converters_bytes(stack, files, cli_output, tmp_path, fmt,
                                                    gzip):
    phases: set[str] = set()
    target = tmp_path / f"out.{fmt}"
    with Client(stack.api_url) as api:
        job = api.convert(files["small"], target, fmt, gzip=gzip,
                          progress=lambda phase, done, total: phases.add(phase))
    assert job["status"] == "succeeded" and job["input"]["filename"] == "orders.xml"
    assert target.read_bytes() == cli_output(files["small"], fmt)
    assert phases == {"upload", "convert", "download"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_library_options_and_a_failed_job(stack, files, cli_output):
    with Client(stack.api_url) as api:
        job = api.submit(open(files["small"], "rb"), "jsonl",  # noqa: SIM115
                         {"namespaces": "strip", "force_list": ["item"]})
        assert job["options"] == {"namespaces": "strip", "force_list": ["item"]}
        api.wait(job)
        out = bytearray()

        class Sink:
            def write(self, chunk: bytes) -> int:
                out.extend(chunk)
                return len(chunk)

        api.download(job, Sink())
        assert bytes(out) == cli_output(files["small"], "jsonl", "--namespaces", "strip",
                                        "--force-list", "item")

        with pytest.raises(JobFailed) as caught:
            api.convert(files["malformed"], os.devnull, "json")
        assert caught.value.code == "XML_PARSE_ERROR" and caught.value.status is None
        assert {"line", "column"} <= set(caught.value.details)

        with pytest.raises(ApiError) as refused:
            api.submit(files["small"], "json", {"indent": 99})
        assert (refused.value.status, refused.value.code) == (400, "INVALID_OPTION")


def test_library_idempotency_key_makes_one_job(stack, files):
    key = f"client-{uuid.uuid4()}"
    with Client(stack.api_url) as api:
        first = api.submit(files["small"], "csv", idempotency_key=key)
        again = api.submit(files["small"], "csv", idempotency_key=key)
        assert again["id"] == first["id"]
        api.wait(first)


def test_jobs_lists_what_was_submitted(stack, files):
    tag = f"client-{uuid.uuid4().hex[:12]}"
    with Client(stack.api_url) as api:
        submitted = [api.submit(files["small"], "json", tag=tag, metadata={"n": n})["id"]
                     for n in range(3)]
        listed = [job["id"] for job in api.jobs(tag=tag, page_size=2)]  # two pages
        assert listed == submitted[::-1]  # newest first
        assert [job["id"] for job in api.jobs(tag=tag, limit=1)] == submitted[-1:]
        for job_id in submitted:
            api.wait(job_id)

    done = xmlconv("jobs", "--tag", tag, "--json", url=stack.api_url)
    assert done.returncode == 0, done.stderr
    jobs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [job["id"] for job in jobs] == submitted[::-1]
    assert [job["metadata"] for job in jobs] == [{"n": 2}, {"n": 1}, {"n": 0}]

    done = xmlconv("jobs", "--tag", tag, "--status", "succeeded", "--limit", "2",
                   url=stack.api_url)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.decode().splitlines()]
    assert [row[:2] for row in rows] == [[submitted[2], "succeeded"],
                                         [submitted[1], "succeeded"]]


# ------------------------------------------------------------------------------ the CLI


def test_cli_submit_wait_gives_the_converters_bytes(stack, files, cli_output, tmp_path):
    out = tmp_path / "orders.csv"
    done = xmlconv("submit", str(files["small"]), "--to", "csv", "--wait", "-o", str(out),
                   url=stack.api_url)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == cli_output(files["small"], "csv")
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()  # not a terminal: plain lines, no bars
    assert lines[0].startswith("xmlconv: upload") and lines[-1].startswith("xmlconv: download")
    assert "xmlconv: convert done" in lines
    assert all(line.startswith("xmlconv: ") for line in lines)


def test_cli_options_gzip_and_standard_output(stack, files, cli_output):
    done = xmlconv("submit", str(files["small"]), "--to", "jsonl", "--namespaces", "strip",
                   "--force-list", "item", "--types", "infer", "--gzip", "--wait", "-q",
                   url=stack.api_url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout == cli_output(files["small"], "jsonl", "--namespaces", "strip",
                                     "--force-list", "item", "--types", "infer")


def test_cli_standard_input(stack, files, cli_output):
    done = xmlconv("submit", "-", "--to", "yaml", "--wait", "-q", url=stack.api_url,
                   stdin=files["small"].read_bytes())
    assert done.returncode == 0, done.stderr
    assert done.stdout == cli_output(files["small"], "yaml")


def test_cli_failed_job_exits_error_with_one_json_line(stack, files, tmp_path):
    out = tmp_path / "out.json"
    done = xmlconv("submit", str(files["malformed"]), "--wait", "-o", str(out), "-q",
                   url=stack.api_url)
    assert done.returncode == 1
    assert done.stdout == b""
    assert len(done.stderr.splitlines()) == 1
    error = error_line(done.stderr)
    assert error["code"] == "XML_PARSE_ERROR"
    assert isinstance(error["message"], str) and error["details"]["line"] == 1
    assert error["details"]["job_id"]
    assert list(tmp_path.iterdir()) == []

    # without --quiet: progress lines, then the error; the job's line on stdout all the same
    job_id = error["details"]["job_id"]
    done = xmlconv("wait", job_id, url=stack.api_url)
    assert done.returncode == 1
    assert error_line(done.stderr)["code"] == "XML_PARSE_ERROR"
    assert "xmlconv: convert failed" in done.stderr.decode().splitlines()
    row = done.stdout.decode().rstrip("\n").split("\t")
    assert row[:3] == [job_id, "failed", "-"] and row[-1] == "XML_PARSE_ERROR"


def test_cli_json_status_wait_and_download(stack, files, cli_output, tmp_path):
    done = xmlconv("submit", str(files["small"]), "--to", "text", url=stack.api_url)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.decode().strip()
    assert len(job_id) == 36

    done = xmlconv("wait", job_id, "--json", "-q", url=stack.api_url)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["id"], job["status"], job["format"]) == (job_id, "succeeded", "text")

    done = xmlconv("status", job_id, "--json", url=stack.api_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["size_bytes"] == job["result"]["size_bytes"]
    done = xmlconv("status", job_id, url=stack.api_url)
    row = done.stdout.decode().rstrip("\n").split("\t")
    assert row[:5] == [job_id, "succeeded", "100.0%", "text", "orders.xml"]

    out = tmp_path / "orders.txt"
    done = xmlconv("download", job_id, "-o", str(out), url=stack.api_url)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == cli_output(files["small"], "text")
    done = xmlconv("download", job_id, "-q", url=stack.api_url)
    assert done.stdout == cli_output(files["small"], "text")

    done = xmlconv("submit", str(files["small"]), "--to", "csv", "--wait", "--json",
                   "-o", str(tmp_path / "o.csv"), "-q", url=stack.api_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert (tmp_path / "o.csv").read_bytes() == cli_output(files["small"], "csv")


def test_cli_cancel(stack, files):
    done = xmlconv("submit", str(files["slow"]), "--json", "-q", url=stack.api_url)
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]

    done = xmlconv("cancel", job_id, "--json", url=stack.api_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "cancelled"

    done = xmlconv("wait", job_id, "-q", url=stack.api_url)
    assert done.returncode == ExitStatus.CANCELLED
    assert error_line(done.stderr)["code"] == "JOB_CANCELLED"
    assert done.stdout.decode().split("\t")[:3] == [job_id, "cancelled", "-"]

    done = xmlconv("cancel", job_id, url=stack.api_url)  # finished: deleted
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == [job_id, "deleted"]

    done = xmlconv("status", job_id, url=stack.api_url)
    assert done.returncode == ExitStatus.API_ERROR
    assert error_line(done.stderr)["code"] in ("JOB_EXPIRED", "JOB_NOT_FOUND")


def test_cli_refusals_exit_api_error(stack, files):
    done = xmlconv("status", str(uuid.uuid4()), url=stack.api_url)
    assert done.returncode == ExitStatus.API_ERROR == 3
    error = error_line(done.stderr)
    assert (error["status"], error["code"]) == (404, "JOB_NOT_FOUND")


@pytest.mark.parametrize(("name", "flags", "status", "code"), [
    ("malformed", [], ExitStatus.ERROR, "XML_PARSE_ERROR"),  # the job fails on it
    ("empty", [], ExitStatus.ERROR, "EMPTY_INPUT"),  # the server refuses it (400)
    ("small", ["--indent", "99"], ExitStatus.USAGE, "INVALID_OPTION"),  # refused (400)
    ("missing", [], ExitStatus.FILE_ERROR, "INPUT_NOT_FOUND"),  # never sent
])
def test_cli_the_same_failure_ends_the_same_way_here_and_on_the_server(
        stack, files, tmp_path, name, flags, status, code):
    source = files.get(name, tmp_path / f"{name}.xml")
    if name == "empty":
        source.write_bytes(b"")
    converted = xmlconv("convert", str(source), "--to", "json", *flags, url=stack.api_url)
    submitted = xmlconv("submit", str(source), "--to", "json", "--wait", "-q", *flags,
                        url=stack.api_url)
    assert converted.returncode == submitted.returncode == status
    assert error_line(converted.stderr)["code"] == error_line(submitted.stderr)["code"] == code
    assert converted.stdout == submitted.stdout == b""


def test_cli_unreachable_server_exits_server_unavailable(files):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["submit", str(files["small"]), "--wait"], ["jobs"], ["status", "x"]):
        done = xmlconv(*args, url=url)
        assert done.returncode == ExitStatus.SERVER_UNAVAILABLE == 4, args
        error = error_line(done.stderr)
        assert error["code"] == "SERVER_UNREACHABLE" and "status" not in error


def test_cli_usage_and_file_errors(stack, tmp_path):
    done = xmlconv("submit", str(tmp_path / "missing.xml"), url=stack.api_url)
    assert done.returncode == ExitStatus.FILE_ERROR == 6
    assert error_line(done.stderr)["code"] == "INPUT_NOT_FOUND"
    assert xmlconv("submit", url=stack.api_url).returncode == 2
    assert xmlconv("jobs", "--limit", "0", url=stack.api_url).returncode == 2
    assert xmlconv("submit", "x.xml", "--metadata", "[1]", url=stack.api_url).returncode == 2


def test_cli_api_keys(keyed_stack, files, cli_output):
    key = keyed_stack.key(f"client-{uuid.uuid4().hex[:8]}")
    done = xmlconv("jobs", url=keyed_stack.api_url, api_key="xck_wrong")
    assert done.returncode == ExitStatus.API_ERROR
    error = error_line(done.stderr)
    assert (error["status"], error["code"]) == (401, "UNAUTHENTICATED")
    done = xmlconv("submit", str(files["small"]), url=keyed_stack.api_url)  # no key at all
    assert done.returncode == ExitStatus.API_ERROR and error_line(done.stderr)["status"] == 401

    done = xmlconv("submit", str(files["small"]), "--to", "csv", "--wait", "-q",
                   url=keyed_stack.api_url, api_key=key["api_key"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == cli_output(files["small"], "csv")
    done = xmlconv("jobs", "--json", "--url", keyed_stack.api_url, "--api-key", key["api_key"],
                   url="http://127.0.0.1:1")  # flags win over the environment
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1


def test_convert_is_still_the_converters(files, cli_output, tmp_path):
    out = tmp_path / "via-module.csv"
    done = subprocess.run([str(BIN / "python"), "-m", "converter.cli", "convert",
                           str(files["small"]), "--to", "csv", "-o", str(out)],
                          capture_output=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == cli_output(files["small"], "csv")  # run by `xmlconv convert`
