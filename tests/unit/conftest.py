"""Fixtures for the converter's unit tests (tests/unit/test_converter_*.py):
`run`, `run_result` and `fail` convert bytes in memory."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import converter
from converter import ConversionError


def _convert(
    doc: bytes,
    fmt: str,
    options: Mapping[str, Any] | None,
    chunk_size: int | None,
    out: io.BytesIO,
):
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    return converter.convert(io.BytesIO(doc), out, fmt, dict(options or {}), None, **kwargs)


@pytest.fixture
def run() -> Callable[..., bytes]:
    """run(doc, fmt="json", options=None, chunk_size=None) -> the output bytes."""

    def run_(
        doc: bytes,
        fmt: str = "json",
        options: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
    ) -> bytes:
        out = io.BytesIO()
        _convert(doc, fmt, options, chunk_size, out)
        return out.getvalue()

    return run_


@pytest.fixture
def run_result() -> Callable[..., tuple[bytes, Any]]:
    """Like `run`, returning (output bytes, ConversionResult)."""

    def run_(
        doc: bytes,
        fmt: str = "json",
        options: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
    ) -> tuple[bytes, Any]:
        out = io.BytesIO()
        result = _convert(doc, fmt, options, chunk_size, out)
        return out.getvalue(), result

    return run_


@pytest.fixture
def fail() -> Callable[..., tuple[ConversionError, bytes]]:
    """fail(doc, fmt="json", options=None, chunk_size=None) -> (the error, partial output).

    Fails the test when the conversion succeeds or raises anything but ConversionError.
    """

    def fail_(
        doc: bytes,
        fmt: str = "json",
        options: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
    ) -> tuple[ConversionError, bytes]:
        out = io.BytesIO()
        with pytest.raises(ConversionError) as caught:
            _convert(doc, fmt, options, chunk_size, out)
        return caught.value, out.getvalue()

    return fail_
