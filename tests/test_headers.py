"""headers.py: the named header sets, and the helpers that apply them."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from edgeproxy.headers import DISALLOWED, end_to_end, is_disallowed, title_case
from tests.aws_reference import DISALLOWED as REFERENCE_DISALLOWED
from tests.aws_reference import DISALLOWED_EXAMPLES


def test_disallowed_list_is_the_current_reference_list() -> None:
    assert {name.lower() for name in REFERENCE_DISALLOWED} == DISALLOWED


@pytest.mark.parametrize("name", DISALLOWED_EXAMPLES)
def test_disallowed_names_and_prefixes_in_any_case(name: str) -> None:
    assert is_disallowed(name)
    assert is_disallowed(name.upper())


@pytest.mark.parametrize("name", ["X-Amzn-Trace-Id", "X-Amz-Meta-A", "X-Cache-Status", "X-Edgeproxy", "X-Accel"])
def test_near_misses_are_not_disallowed(name: str) -> None:
    assert not is_disallowed(name)


def test_end_to_end_drops_hop_by_hop_and_connection_named_headers_keeping_order_and_repeats() -> None:
    headers = CIMultiDict(
        [
            ("Set-Cookie", "a=1"),
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "secret"),
            ("Transfer-Encoding", "chunked"),
            ("set-cookie", "b=2"),
            ("Keep-Alive", "timeout=5"),
            ("Content-Type", "text/plain"),
        ]
    )
    assert list(end_to_end(headers)) == [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("user-agent", "User-Agent"), ("content-type", "Content-Type"), ("x-a-b", "X-A-B"), ("etag", "Etag")],
)
def test_title_case_is_how_lambda_at_edge_fills_a_missing_key(name: str, expected: str) -> None:
    assert title_case(name) == expected
