"""The one exception the converter raises, and every code it can carry."""

from __future__ import annotations

XML_PARSE_ERROR = "XML_PARSE_ERROR"
EMPTY_INPUT = "EMPTY_INPUT"
NOT_XML = "NOT_XML"
ENCODING_ERROR = "ENCODING_ERROR"
XML_SECURITY_VIOLATION = "XML_SECURITY_VIOLATION"
DEPTH_LIMIT_EXCEEDED = "DEPTH_LIMIT_EXCEEDED"
INVALID_OPTION = "INVALID_OPTION"
RECORD_NOT_FOUND = "RECORD_NOT_FOUND"
NAMESPACE_ERROR = "NAMESPACE_ERROR"


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

    def to_dict(self) -> dict:
        """The error as the service and the CLI show it (None fields left out)."""
        error = {"code": self.code, "message": self.message}
        for name in ("line", "column", "option"):
            value = getattr(self, name)
            if value is not None:
                error[name] = value
        return error

    def __repr__(self) -> str:
        return f"ConversionError({self.code!r}, {self.message!r})"
