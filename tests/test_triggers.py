"""triggers.py: the facts of the four triggers (§2.4, §3.4) and of the ALB target."""

from __future__ import annotations

from edgeproxy.triggers import (
    FACTS,
    LEGACY_VIEWER_RESPONSE_READ_ONLY,
    REQUEST_TRIGGERS,
    TRIGGERS,
    Source,
    default_timeout,
)
from tests.aws_reference import READ_ONLY


def test_read_only_lists_are_the_current_reference_lists() -> None:
    assert {t: {n.lower() for n in names} for t, names in READ_ONLY.items()} == {
        trigger: FACTS[trigger].read_only for trigger in TRIGGERS
    }
    assert {"content-encoding", "content-length", "transfer-encoding", "warning", "via"} == (
        LEGACY_VIEWER_RESPONSE_READ_ONLY
    )


def test_triggers_in_cloudfront_order_with_their_sides() -> None:
    assert TRIGGERS == ("viewer-request", "origin-request", "origin-response", "viewer-response")
    assert REQUEST_TRIGGERS == ("viewer-request", "origin-request")
    assert [FACTS[t].include_body for t in TRIGGERS] == [True, True, False, False]


def test_quotas_per_trigger() -> None:
    # §2.4: viewer triggers 5 s, 128 MB, 40 KB; origin triggers 30 s, 10,240 MB, 1 MB.
    viewer = [
        (FACTS[t].max_timeout, FACTS[t].max_memory, FACTS[t].size_limit) for t in ("viewer-request", "viewer-response")
    ]
    origin = [
        (FACTS[t].max_timeout, FACTS[t].max_memory, FACTS[t].size_limit) for t in ("origin-request", "origin-response")
    ]
    assert viewer == [(5.0, 128, 40 * 1024)] * 2
    assert origin == [(30.0, 10240, 1024 * 1024)] * 2
    sources: tuple[Source, ...] = (*TRIGGERS, "alb")
    assert [default_timeout(source) for source in sources] == [5.0, 30.0, 30.0, 5.0, 3.0]
