"""Fixtures for the converter's unit tests (tests/unit/test_converter_*.py), converting
bytes in memory:

    run(doc, fmt="json", options=None, chunk_size=None)  -> output bytes
    run_result(doc, ...)  -> (output bytes, result)
    fail(doc, ...)        -> (ConversionError, partial output)

and whether parse_options takes one option's value:

    accepted(name, value) -> bool (False: refused with INVALID_OPTION naming that option)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import converter
from converter import ConversionError, parse_options


def _convert(out: io.BytesIO, doc: bytes, fmt: str = "json",
             options: Mapping[str, Any] | None = None, chunk_size: int | None = None) -> Any:
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    return converter.convert(io.BytesIO(doc), out, fmt, dict(options or {}), None, **kwargs)


def _run_result(doc: bytes, *args: Any, **kwargs: Any) -> tuple[bytes, Any]:
    out = io.BytesIO()
    result = _convert(out, doc, *args, **kwargs)
    return out.getvalue(), result


def _fail(doc: bytes, *args: Any, **kwargs: Any) -> tuple[ConversionError, bytes]:
    """Fails the test when the conversion succeeds or raises anything but ConversionError."""
    out = io.BytesIO()
    with pytest.raises(ConversionError) as caught:
        _convert(out, doc, *args, **kwargs)
    return caught.value, out.getvalue()


@pytest.fixture
def run() -> Callable[..., bytes]:
    return lambda doc, *args, **kwargs: _run_result(doc, *args, **kwargs)[0]


@pytest.fixture
def run_result() -> Callable[..., tuple[bytes, Any]]:
    return _run_result


@pytest.fixture
def fail() -> Callable[..., tuple[ConversionError, bytes]]:
    return _fail


def _accepted(name: str, value: Any) -> bool:
    try:
        parse_options({name: value})
    except ConversionError as exc:
        assert exc.code == "INVALID_OPTION" and exc.option == name
        return False
    return True


@pytest.fixture
def accepted() -> Callable[[str, Any], bool]:
    return _accepted
