"""The one exception the converter raises, every code it can carry, and the one shape in which
every error is shown: by the `xmlconv` command, the API and a failed job alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

XML_PARSE_ERROR = "XML_PARSE_ERROR"
EMPTY_INPUT = "EMPTY_INPUT"
NOT_XML = "NOT_XML"
ENCODING_ERROR = "ENCODING_ERROR"
XML_SECURITY_VIOLATION = "XML_SECURITY_VIOLATION"
DEPTH_LIMIT_EXCEEDED = "DEPTH_LIMIT_EXCEEDED"
INVALID_OPTION = "INVALID_OPTION"
RECORD_NOT_FOUND = "RECORD_NOT_FOUND"
NAMESPACE_ERROR = "NAMESPACE_ERROR"
# The converter's limits (converter/limits.py, docs/limits.md).
TOO_MANY_ATTRIBUTES = "TOO_MANY_ATTRIBUTES"
ATTRIBUTE_DEFAULTS_LIMIT = "ATTRIBUTE_DEFAULTS_LIMIT"
TOO_MANY_NAMES = "TOO_MANY_NAMES"
TOO_MANY_COLUMNS = "TOO_MANY_COLUMNS"
VALUE_TOO_LARGE = "VALUE_TOO_LARGE"
OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
LIMIT_CODES = frozenset({TOO_MANY_ATTRIBUTES, ATTRIBUTE_DEFAULTS_LIMIT, TOO_MANY_NAMES,
                         TOO_MANY_COLUMNS, VALUE_TOO_LARGE, OUTPUT_TOO_LARGE})
CODES = frozenset({XML_PARSE_ERROR, EMPTY_INPUT, NOT_XML, ENCODING_ERROR, XML_SECURITY_VIOLATION,
                   DEPTH_LIMIT_EXCEEDED, INVALID_OPTION, RECORD_NOT_FOUND, NAMESPACE_ERROR,
                   *LIMIT_CODES})

# The command line's own: a local file (converter/cli.py, client/cli.py).
INPUT_NOT_FOUND = "INPUT_NOT_FOUND"
IO_ERROR = "IO_ERROR"


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict:
    """`{"error": {"code", "message", "details"}}`: an error as the API answers it and the
    commands print it. Here, in the lowest layer, so that every layer builds it the same way."""
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}


def io_error(exc: OSError) -> dict:
    """IO_ERROR for a local file that could not be read or written: 'path: reason'."""
    where = f"{exc.filename}: " if exc.filename else ""
    return error_body(IO_ERROR, f"{where}{exc.strerror or exc}")


class ConversionError(Exception):
    """A conversion that cannot finish, with a stable code and a message for a person."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        option: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column
        self.option = option

    @property
    def details(self) -> dict:
        """Where the error is (line, column) or which option it is in; None fields left out."""
        return {name: value for name in ("line", "column", "option")
                if (value := getattr(self, name)) is not None}

    def envelope(self) -> dict:
        """The error as the service and the CLI show it."""
        return error_body(self.code, self.message, self.details)

    def __repr__(self) -> str:
        return f"ConversionError({self.code!r}, {self.message!r})"
