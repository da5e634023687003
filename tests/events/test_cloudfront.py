"""events/cloudfront.py: turning event headers into wire headers."""

from __future__ import annotations

from typing import Any

import pytest

from edgeproxy.events.cloudfront import to_wire_headers, wire_name


@pytest.mark.parametrize(
    ("name", "entry", "sent"),
    [
        ("x-foo", {"value": "1"}, "X-Foo"),  # §1.4: a missing key is the map name, title-cased
        ("x-foo", {"key": "x-FOO", "value": "1"}, "x-FOO"),  # the same name: its spelling is kept
        ("last-modified", {"key": "X-Amz-Meta-Last-Modified", "value": "1"}, "Last-Modified"),  # §3.6
        ("x-k", {"key": "X-\u212a", "value": "1"}, "X-K"),  # the Kelvin sign lower-cases to 'k', but is not ASCII
        ("x-foo", {"key": 7, "value": "1"}, "X-Foo"),
    ],
)
def test_wire_name_is_decided_by_the_map_name(name: str, entry: dict[str, Any], sent: str) -> None:
    assert wire_name(name, entry) == sent
    assert list(to_wire_headers({name: [entry]}).items()) == [(sent, "1")]
