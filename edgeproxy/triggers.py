"""What a function is invoked for, and the facts of each: the four Lambda@Edge triggers and the ALB target.

One table answers every "is this a request trigger", "what is its timeout", "what may it read or change" question
(reference/aws-behaviour.md §1.8, §2.4, §3.4, §7.5), so that no module spells a rule out on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Trigger = Literal["viewer-request", "origin-request", "origin-response", "viewer-response"]
# What a function is invoked for: a Lambda@Edge trigger, or an ALB target group (§7).
Source = Trigger | Literal["alb"]

KB = 1024  # §10 item 13: "KB" is undocumented; 1,024 bytes
MB = 1024 * KB


@dataclass(frozen=True)
class TriggerFacts:
    """One trigger's facts. ``size_limit`` bounds a generated or replaced response (headers and body together) and
    the include-body data a function sees (§2.4, §1.5); ``read_only`` are the headers a function may read but not
    add, change or delete (§3.4, current lists)."""

    name: Trigger
    side: Literal["request", "response"]
    location: Literal["viewer", "origin"]
    default_timeout: float
    max_timeout: float
    max_memory: int
    size_limit: int
    read_only: frozenset[str]

    @property
    def is_request(self) -> bool:
        """A request trigger may return the request (to go on) or a response (generated, §2.2)."""
        return self.side == "request"

    @property
    def include_body(self) -> bool:
        """Whether an association may have Include Body (§1.5: the request triggers only)."""
        return self.side == "request"


def _facts(name: Trigger, read_only: set[str]) -> TriggerFacts:
    # §2.4: viewer triggers 5 s, 128 MB and 40 KB; origin triggers 30 s, Lambda's maximum memory and 1 MB.
    side: Literal["request", "response"] = "request" if name.endswith("request") else "response"
    if name.startswith("viewer"):
        return TriggerFacts(name, side, "viewer", 5.0, 5.0, 128, 40 * KB, frozenset(read_only))
    return TriggerFacts(name, side, "origin", 30.0, 30.0, 10240, MB, frozenset(read_only))


FACTS: Mapping[Trigger, TriggerFacts] = {
    "viewer-request": _facts("viewer-request", {"content-length", "host", "transfer-encoding", "via"}),
    "origin-request": _facts(
        "origin-request",
        {
            "accept-encoding",
            "content-length",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "transfer-encoding",
            "via",
        },
    ),
    "origin-response": _facts("origin-response", {"transfer-encoding", "via"}),
    "viewer-response": _facts("viewer-response", {"warning", "via"}),
}
TRIGGERS: tuple[Trigger, ...] = tuple(FACTS)
REQUEST_TRIGGERS: tuple[Trigger, ...] = tuple(name for name, facts in FACTS.items() if facts.is_request)
RESPONSE_TRIGGERS: tuple[Trigger, ...] = tuple(name for name, facts in FACTS.items() if not facts.is_request)
ORIGIN_TRIGGERS: tuple[Trigger, ...] = tuple(name for name, facts in FACTS.items() if facts.location == "origin")

# §3.4 history: the 2021 guide's viewer-response list, selectable with viewer_response_read_only = "2021".
LEGACY_VIEWER_RESPONSE_READ_ONLY = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "warning", "via"}
)

# §7.5: an ALB target runs for its function's own timeout; Lambda's default is 3 s, its maximum 900 s.
ALB_DEFAULT_TIMEOUT = 3.0
LAMBDA_MAX_TIMEOUT = 900.0
DEFAULT_MEMORY = 128
LAMBDA_MAX_MEMORY = 10240  # MB; Lambda's memory sizes are 128-10240


def default_timeout(source: Source) -> float:
    return ALB_DEFAULT_TIMEOUT if source == "alb" else FACTS[source].default_timeout
