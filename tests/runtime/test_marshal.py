"""runtime/marshal.py: results as Lambda's Python runtime marshals them, and JSON copies."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from edgeproxy.runtime.marshal import MarshalError, copy_json, marshalled, result_json


def test_what_json_holds_and_a_decimal_as_its_digits() -> None:
    assert result_json({"a": (1, 2), "d": decimal.Decimal("200"), "f": decimal.Decimal("1.5")}) == (
        '{"a": [1, 2], "d": 200, "f": 1.5}'
    )


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object()])
def test_what_json_cannot_hold_is_a_marshal_error(value: Any) -> None:
    with pytest.raises(MarshalError, match="not JSON serializable"):
        result_json({"x": value})


def test_a_circular_result_is_a_marshal_error() -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    with pytest.raises(MarshalError):
        result_json(circular)


def test_marshalled_is_the_value_as_received_and_its_size_in_bytes() -> None:
    value, size = marshalled({"body": "é", "headers": ("a",)})
    assert value == {"body": "é", "headers": ["a"]}
    assert size == len('{"body": "\\u00e9", "headers": ["a"]}')


def test_copy_json_is_deep_and_takes_what_marshal_cannot() -> None:
    class Text(str):
        pass

    original = {"a": [{"b": "c"}], "t": (1, Text("x"))}
    copied = copy_json(original)
    assert copied == {"a": [{"b": "c"}], "t": [1, "x"]}
    copied["a"][0]["b"] = "changed"
    assert original["a"][0]["b"] == "c"  # type: ignore[index]
