"""How the `xmlconv` command ends: one status for each kind of failure, whichever command met it
(`convert` here, or `submit`, `wait`, … on a server). Modelled on httpie's ExitStatus; the
table is in docs/client.md.

It lives in the converter, which imports nothing of ours, so that both halves of the command
import it: converter/cli.py, and client/cli.py (which loads no other part of the converter
than its errors, and never the engine).
"""

from __future__ import annotations

from enum import IntEnum

from .errors import CODES, INPUT_NOT_FOUND, INVALID_OPTION, IO_ERROR


class ExitStatus(IntEnum):
    SUCCESS = 0
    ERROR = 1  # the conversion failed (XML_PARSE_ERROR, EMPTY_INPUT, …), here or as a job
    USAGE = 2  # bad arguments: argparse's own status, and an option's value (INVALID_OPTION)
    API_ERROR = 3  # the server refused the request (401, 404, 409, 413, …)
    SERVER_UNAVAILABLE = 4  # no answer (refused, timed out), or 502/503/504 after the retries
    CANCELLED = 5  # the job was cancelled
    FILE_ERROR = 6  # a local file: the input does not exist, or reading or writing failed

    @classmethod
    def of(cls, code: str) -> ExitStatus | None:
        """The status of a failure that the converter's codes name, wherever it was met: here,
        in the server's refusal, or in a failed job. None for any other code."""
        if code == INVALID_OPTION:
            return cls.USAGE
        if code in (INPUT_NOT_FOUND, IO_ERROR):
            return cls.FILE_ERROR
        return cls.ERROR if code in CODES else None
