"""Request parameters read as text from a client: each refusal is a 400 naming its parameter
(`details.parameter`), never an exception further down (a 500) nor a value that reaches Redis
(a 503). tests/integration/test_parameters.py sends arbitrary text to every query parameter."""

from __future__ import annotations

from common import errors
from common.errors import ServiceError

ASCII_DIGITS = frozenset("0123456789")


def invalid(parameter: str, message: str) -> ServiceError:
    return ServiceError(errors.INVALID_REQUEST, message, {"parameter": parameter}, status=400)


def whole_number(raw: str, parameter: str, low: int, high: int, message: str) -> int:
    """`raw` as an integer from `low` to `high`: ASCII digits only (`str.isdigit` is true for
    '²' and '٣', which `int` refuses or reads), at most as many (leading zeros aside) as
    `high` has."""
    if not raw or not set(raw) <= ASCII_DIGITS or len(raw.lstrip("0")) > len(str(high)):
        raise invalid(parameter, message)
    value = int(raw)
    if not low <= value <= high:
        raise invalid(parameter, message)
    return value


def naming_the_parameter(error: ServiceError) -> ServiceError:
    """A converter's refusal of an option (INVALID_OPTION, `details.option`) as the API names
    any parameter: `details.parameter` too."""
    option = (error.details or {}).get("option")
    if option is not None and "parameter" not in error.details:
        error.details = {**error.details, "parameter": option}
    return error
