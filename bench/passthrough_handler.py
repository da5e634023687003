"""A pass-through Lambda@Edge handler for every trigger: returns the request or the response unchanged."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: object) -> Any:
    cf = event["Records"][0]["cf"]
    return cf.get("response", cf["request"])
