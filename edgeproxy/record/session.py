"""Serving with a recording, in vcrpy's record modes: which origin answers, and which observer writes.

* ``all``: every origin request goes to the live origin, and every exchange is written (the file starts empty);
* ``none``: the origin is never contacted; origin requests are answered from the recording;
* ``once`` (the default): ``all`` when the file does not exist, ``none`` when it does;
* ``new_episodes``: recorded origin requests are replayed, the others go live and their exchanges are appended.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from edgeproxy.config import Distribution, TargetGroup
from edgeproxy.exchange import Exchange, Observer
from edgeproxy.origin import Origin
from edgeproxy.record.har import HarFile, Recording, RecordingError, entry, read
from edgeproxy.record.matching import DEFAULT_MATCH_ON
from edgeproxy.record.redact import Redactor
from edgeproxy.record.replay import ReplayOrigin
from edgeproxy.server import default_origin

log = logging.getLogger("edgeproxy")

RecordMode = Literal["once", "new_episodes", "none", "all"]
RECORD_MODES: tuple[RecordMode, ...] = get_args(RecordMode)


def record_mode(value: str) -> RecordMode:
    for mode in RECORD_MODES:
        if value == mode:
            return mode
    raise ValueError(f"{value!r} is not a record mode ({', '.join(RECORD_MODES)})")


class Recorder(Observer):
    """Writes each finished exchange to a recording, as it completes. ``only_live``: only exchanges whose origin
    answered live (``new_episodes``: what was replayed is in the file already)."""

    wants_bodies = True

    def __init__(
        self, file: HarFile, redactor: Redactor, *, only_live: bool = False, replay: ReplayOrigin | None = None
    ) -> None:
        self.file = file
        self.redactor = redactor
        self.only_live = only_live
        self.replay = replay
        self.written = 0

    def exchange_done(self, exchange: Exchange) -> None:
        origin = exchange.origin_response
        if self.only_live and (origin is None or origin.replayed):
            return
        record = entry(exchange, self.redactor)
        self.file.append(record)
        self.written += 1
        if self.replay is not None:
            self.replay.learn(record)

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True)
class Settings:
    """How to serve with a recording: the file, the record mode, what identifies an origin request
    (``match_on``), and what to redact: ``redact`` adds header, cookie or query-parameter names; ``default_redactions``
    keeps the credentials headers and the origin custom headers redacted."""

    path: Path
    mode: RecordMode = "once"
    match_on: tuple[str, ...] = DEFAULT_MATCH_ON
    redact: tuple[str, ...] = ()
    default_redactions: bool = True
    read: Recording | None = None  # the file's entries, when the caller has already read it (a golden replay)
    truncate: bool = True  # mode all empties the file; False: another process did (a worker of serve --workers)


@dataclass
class Session:
    """A proxy's recording: ``origin`` answers its origin requests (``None`` in ALB mode) and ``observers`` write its
    exchanges. ``mode`` is the mode in effect (``once`` has become ``all`` or ``none``)."""

    path: Path
    mode: RecordMode
    origin: Origin | None
    observers: tuple[Observer, ...] = ()
    replay: ReplayOrigin | None = None
    recorders: list[Recorder] = field(default_factory=list)

    def close(self) -> None:
        for recorder in self.recorders:
            recorder.close()


def open_for(served: Distribution | TargetGroup, settings: Settings) -> Session:
    """Set up ``served`` (a distribution, or an ALB target group) to serve with the recording of ``settings``."""
    custom_headers: set[str] = set()
    live: Origin | None = None
    if isinstance(served, Distribution):
        custom_headers = {name for origin in served.origins.values() for name, _ in origin.custom_headers}
        live = default_origin(served)
    if not settings.default_redactions:
        custom_headers = set()
    redactor = Redactor.make(settings.redact, defaults=settings.default_redactions, custom_headers=custom_headers)
    return open_session(
        settings.path,
        settings.mode,
        live=live,
        redactor=redactor,
        match_on=settings.match_on,
        read=settings.read,
        truncate=settings.truncate,
    )


def open_session(
    path: Path,
    mode: RecordMode = "once",
    *,
    live: Origin | None,
    redactor: Redactor | None = None,
    match_on: tuple[str, ...] = DEFAULT_MATCH_ON,
    read: Recording | None = None,
    truncate: bool = True,
) -> Session:
    """Set up serving with the recording at ``path``. ``live`` is the origin requests go to when they go live
    (``None`` in ALB mode, which has no origin: the modes then decide only what is written). ``read``: the file as
    already read, not read again. ``truncate``: mode ``all`` starts the file anew (else it appends to it: several
    processes recording into one file, one of which started it)."""
    redactor = redactor or Redactor()
    if mode == "once":
        mode = "none" if path.exists() else "all"
    if mode == "all":
        recorder = Recorder(HarFile(path, truncate=truncate), redactor)
        return Session(path, mode, live, (recorder,), recorders=[recorder])
    fresh = mode == "new_episodes" and not path.exists()
    recording = Recording(path, []) if fresh else read or read_for_replay(path)
    if mode == "none":
        if live is None:
            return Session(path, mode, None)
        replay = ReplayOrigin(recording, match_on=match_on, redactor=redactor)
        return Session(path, mode, replay, replay=replay)
    file = _appendable(path, recording)
    if live is None:
        recorder = Recorder(file, redactor)
        return Session(path, mode, None, (recorder,), recorders=[recorder])
    replay = ReplayOrigin(recording, match_on=match_on, redactor=redactor, live=live)
    recorder = Recorder(file, redactor, only_live=True, replay=replay)
    return Session(path, mode, replay, (recorder,), replay=replay, recorders=[recorder])


def read_for_replay(path: Path) -> Recording:
    if not path.exists():
        raise RecordingError(f"{path}: no recording there (record it first: --record-mode all, or once)")
    recording = read(path)
    if recording.cut_short_warning:
        log.warning("%s", recording.cut_short_warning)
    return recording


def _appendable(path: Path, recording: Recording) -> HarFile:
    """The file to append to; one cut short is first rewritten whole, from the exchanges it kept. The rewrite goes
    to a file beside it, which then replaces it: the recording read goes on reading its entries from the file it
    indexed (``har.Entries``), which truncating would take away, and a rewrite cut short in turn leaves the file as
    it was."""
    if recording.cut_short:
        whole = path.with_name(f".{path.name}.{os.getpid()}.rewrite")
        file = HarFile(whole, truncate=True)
        try:
            for record in recording.entries:
                file.append(record)
        finally:
            file.close()
        os.replace(whole, path)
    return HarFile(path)
