"""An origin answered from a recording: byte for byte, the status, reason, repeated headers and body the origin sent
when it was recorded. What the recording does not hold goes to the live origin, when there is one (record mode
``new_episodes``), or gets CloudFront's 502 naming the nearest recorded request (``none``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

from aiohttp import StreamReader
from multidict import CIMultiDict

from edgeproxy.errors import ReplayMissError
from edgeproxy.origin import Origin, OriginRequest, OriginResponse
from edgeproxy.record.har import Recording, body_of, collector_paused, header_pairs
from edgeproxy.record.matching import DEFAULT_MATCH_ON, Call, Index
from edgeproxy.record.redact import Redactor

log = logging.getLogger("edgeproxy")


class ReplayOrigin:
    """Answers origin requests from ``recording``'s origin exchanges, matched on ``match_on``."""

    def __init__(
        self,
        recording: Recording,
        *,
        match_on: tuple[str, ...] = DEFAULT_MATCH_ON,
        redactor: Redactor | None = None,
        live: Origin | None = None,
    ) -> None:
        self.recording = recording
        self.redactor = redactor or Redactor()
        self.live = live
        self.index = Index(match_on)
        self.misses: list[ReplayMissError] = []
        self._headers = "headers" in self.index.on or "body" in self.index.on  # body: read by its Content-Type
        self._body = "body" in self.index.on or "raw_body" in self.index.on
        with collector_paused():
            for position in range(len(recording.entries)):
                self._learn(recording.origin(position), position, played=False)

    def learn(self, record: dict[str, Any], *, played: bool = True) -> None:
        """Answer from ``record``'s origin exchange from now on (one just recorded is already played: an identical
        request repeats it)."""
        self._learn(record.get("_origin"), None, played=played)

    def _learn(self, origin: Any, position: int | None, *, played: bool) -> None:
        """Index the origin request of an entry's origin exchange (``_origin``), to be answered by the entry at
        ``position`` in the recording (read again when it is played: a long recording is not held in memory), or,
        with ``None``, by that exchange itself."""
        if isinstance(origin, dict) and isinstance(origin.get("request"), dict):
            call = Call.recorded(origin["request"], headers=self._headers, body=self._body)
            self.index.add(call, origin if position is None else position, played=played)

    def _answer(self, answer: int | dict[str, Any]) -> dict[str, Any]:
        origin = self.recording.origin(answer) if isinstance(answer, int) else answer
        response = origin.get("response")
        return response if isinstance(response, dict) else {}

    async def start(self) -> None:
        if self.live is not None:
            await self.live.start()

    async def close(self) -> None:
        if self.live is not None:
            await self.live.close()

    async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
        body = request.body
        if "body" in self.index.on or "raw_body" in self.index.on:
            body = await _read(body)  # compared, so in memory; sent as it is if it goes live
            request = replace(request, body=body)
        call = Call.of(request, body if isinstance(body, bytes) else None, self.redactor)
        answer = self.index.find(call)
        if answer is not None:
            return _response(self._answer(answer))
        if self.live is None:
            miss = ReplayMissError(str(call), self.index.nearest(call))
            self.misses.append(miss)
            raise miss
        response = await self.live.fetch(request, stack)
        return response


async def _read(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, StreamReader):
        return await body.read()
    return b"".join([chunk async for chunk in body])


def _response(record: dict[str, Any]) -> OriginResponse:
    body = body_of(record.get("content")) or b""
    return OriginResponse(
        status=int(record.get("status", 502)),
        reason=record.get("statusText") or None,
        headers=CIMultiDict(header_pairs(record.get("headers"))),
        body=_chunks(body),  # streamed, as the origin's was: the framing headers stay the recorded ones
        replayed=True,
    )


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body
