"""Fixtures for the converter's unit tests (tests/unit/test_converter_*.py).

`builder` runs a test with the C accelerator (converter/_accel.pyx) and, while the
engine has one, with the Python reference path (converter.values.ACCELERATE = False).
`run` and `fail` convert bytes in memory through whichever path `builder` selected.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import converter
import converter.values
from converter import ConversionError

# The Python reference path exists while converter.values.ACCELERATE does; since the
# engine went C-only (one value builder) only the accelerated path is there to run.
BUILDERS = ["accel", "python"] if hasattr(converter.values, "ACCELERATE") else ["accel"]


@pytest.fixture(params=BUILDERS)
def builder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if hasattr(converter.values, "ACCELERATE"):
        monkeypatch.setattr(converter.values, "ACCELERATE", request.param == "accel")
    return request.param


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
def run(builder: str) -> Callable[..., bytes]:
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
def run_result(builder: str) -> Callable[..., tuple[bytes, Any]]:
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
def fail(builder: str) -> Callable[..., tuple[ConversionError, bytes]]:
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
