"""api/params.py: numbers a client writes are ASCII digits in range, else a 400 naming them."""

from __future__ import annotations

import pytest

from api.params import naming_the_parameter, whole_number
from common.errors import ServiceError


@pytest.mark.parametrize("raw", ["²", "٣", "𝟙", "", " 1", "1 ", "+1", "-1", "1.0", "0x1", "61",
                                 "9" * 5000])
def test_anything_but_ascii_digits_in_range_is_refused_by_name(raw):
    with pytest.raises(ServiceError) as refused:
        whole_number(raw, "wait", 0, 60, "wait must be from 0 to 60")
    assert refused.value.status == 400
    assert refused.value.code == "INVALID_REQUEST"
    assert refused.value.details == {"parameter": "wait"}


@pytest.mark.parametrize("raw, value", [("0", 0), ("7", 7), ("60", 60), ("007", 7),
                                        ("0" * 400 + "1", 1)])
def test_ascii_digits_in_range_are_read(raw, value):
    assert whole_number(raw, "wait", 0, 60, "") == value


def test_an_option_refused_by_the_converter_names_its_parameter_too():
    error = naming_the_parameter(ServiceError("INVALID_OPTION", "bad", {"option": "indent"},
                                              status=400))
    assert error.details == {"option": "indent", "parameter": "indent"}
