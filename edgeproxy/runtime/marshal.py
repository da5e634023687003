"""JSON as Lambda's runtimes marshal it: a handler's result is serialized before its invoker sees it."""

from __future__ import annotations

import decimal
import json
from typing import Any

import orjson


class MarshalError(Exception):
    """A handler's result that the Lambda runtime cannot send as JSON (``Runtime.MarshalError``)."""


def _decimal_digits(value: Any) -> Any:
    # The Python Lambda runtime writes a Decimal (DynamoDB hands them out) as its digits: Decimal("200") is 200.
    if isinstance(value, decimal.Decimal):
        return json.loads(str(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def result_json(result: Any) -> str:
    """A handler's result as the Python Lambda runtime sends it back to its invoker: serialized to JSON. Raises
    :class:`MarshalError` for what JSON cannot hold (a set, bytes, a datetime, a circular or too deep structure),
    which Lambda reports as the function's error."""
    try:
        return json.dumps(result, default=_decimal_digits)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MarshalError(str(exc)) from None


def marshalled(result: Any) -> tuple[Any, int]:
    """``result`` as the invoker receives it (parsed back from the JSON the runtime sends: a tuple is a list, a
    Decimal a number), and the size of that JSON in bytes. Raises :class:`MarshalError`."""
    payload = result_json(result)
    return json.loads(payload), len(payload.encode("utf-8", errors="surrogatepass"))


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, strings, numbers), as JSON: a tuple becomes a list, a ``str``
    subclass a ``str``. Through orjson (C speed, twice as fast as ``marshal`` here) when it takes the data; what it
    refuses (an integer past 64 bits, a lone surrogate...) is walked in Python."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, ValueError):  # orjson.JSONEncodeError, orjson.JSONDecodeError
        return _walk_copy(value)


def json_bytes(value: Any) -> bytes | None:
    """``value`` as JSON, by orjson; ``None`` for what orjson refuses (an integer past 64 bits...)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return None


def _walk_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _walk_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk_copy(item) for item in value]
    return value
