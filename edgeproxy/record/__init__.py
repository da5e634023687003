"""Record and replay: HAR 1.2 recordings with the pipeline inside (:mod:`~edgeproxy.record.har`), secrets kept out
(:mod:`~edgeproxy.record.redact`), vcrpy's record modes (:mod:`~edgeproxy.record.session`), an origin answered from a
recording (:mod:`~edgeproxy.record.replay`, matched by :mod:`~edgeproxy.record.matching`), and golden replays that
say what changed (:mod:`~edgeproxy.record.golden`)."""

from __future__ import annotations

from edgeproxy.record.har import Recording, RecordingError
from edgeproxy.record.matching import DEFAULT_MATCH_ON, match_on
from edgeproxy.record.session import RECORD_MODES, RecordMode, Session, Settings, open_for, record_mode

__all__ = [
    "DEFAULT_MATCH_ON",
    "RECORD_MODES",
    "RecordMode",
    "Recording",
    "RecordingError",
    "Session",
    "Settings",
    "match_on",
    "open_for",
    "record_mode",
]
