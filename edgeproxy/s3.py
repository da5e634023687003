"""S3-style origins served from local folders: a :class:`FolderBucket` answers like an S3 bucket without public
listing (files by key, ``404 NoSuchKey``, ``403 AccessDenied``, ``400 KeyTooLongError``, ``ETag``, ``304`` on a
matching condition)."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import mimetypes
import os
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from stat import S_ISREG
from urllib.parse import unquote
from xml.sax.saxutils import escape

from multidict import CIMultiDict

from edgeproxy.config import DirectoryOrigin
from edgeproxy.origin import CHUNK_SIZE, OriginRequest, OriginResponse

ETAG_CACHE_SIZE = 4096  # files whose MD5 is remembered (by path, mtime and size)
S3_MAX_KEY_BYTES = 1024  # S3 object keys are at most 1,024 bytes of UTF-8; a longer one is 400 KeyTooLongError
# What XML 1.0 cannot hold, even as a character reference: taken out of the <Key> of an error document.
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class FolderBucket:
    """One folder origin, answering S3 requests for its bucket."""

    def __init__(self, origin: DirectoryOrigin) -> None:
        self.origin = origin
        self._etags: collections.OrderedDict[tuple[Path, int, int], str] = collections.OrderedDict()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
        """A key no file can have (a NUL, a name too long for the file system, a symlink loop) does not exist."""
        key = unquote(request.path.removeprefix("/"))
        if request.method not in ("GET", "HEAD"):
            return _access_denied(key)
        if len(key.encode("utf-8", "surrogatepass")) > S3_MAX_KEY_BYTES:
            return s3_error(400, "KeyTooLongError", "Your key is too long", key)
        root = self.origin.directory
        if not key or key.endswith("/"):
            return _access_denied(key)
        try:
            path = (root / key).resolve()  # RuntimeError on a symlink loop (Python 3.11), ValueError on a NUL
            if path != root and root not in path.parents:
                return _access_denied(key)
            stat = await asyncio.to_thread(path.stat)
            if not S_ISREG(stat.st_mode):
                return _no_such_key(key)
            etag = f'"{await asyncio.to_thread(self._md5_of, path, stat.st_mtime_ns, stat.st_size)}"'
        except PermissionError:
            return _access_denied(key)
        except (OSError, RuntimeError, ValueError):  # not found, ENAMETOOLONG, ELOOP, a NUL...
            return _no_such_key(key)
        response_headers = CIMultiDict(
            {
                "Date": formatdate(usegmt=True),
                "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
                "ETag": etag,
                "Accept-Ranges": "bytes",
                "Content-Type": mimetypes.guess_type(path.name)[0] or "binary/octet-stream",
                "Server": "AmazonS3",
            }
        )
        if _not_modified(request.headers, etag, stat.st_mtime):
            return OriginResponse(status=304, reason=None, headers=response_headers, body=b"")
        response_headers["Content-Length"] = str(stat.st_size)
        body = b"" if request.method == "HEAD" else _read_chunks(path)
        return OriginResponse(status=200, reason=None, headers=response_headers, body=body)

    def _md5_of(self, path: Path, mtime_ns: int, size: int) -> str:
        key = (path, mtime_ns, size)
        etag = self._etags.get(key)
        if etag is None:
            digest = hashlib.md5(usedforsecurity=False)
            with path.open("rb") as file:
                while chunk := file.read(CHUNK_SIZE):
                    digest.update(chunk)
            etag = self._etags[key] = digest.hexdigest()
            if len(self._etags) > ETAG_CACHE_SIZE:
                self._etags.popitem(last=False)
        else:
            self._etags.move_to_end(key)
        return etag


def s3_error(status: int, code: str, message: str, key: str) -> OriginResponse:
    """S3's XML error response."""
    request_id = os.urandom(8).hex().upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        + (f"<Key>{escape(NOT_XML.sub('', key))}</Key>" if code == "NoSuchKey" else "")
        + f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()
    headers = CIMultiDict(
        {
            "Content-Type": "application/xml",
            "Content-Length": str(len(body)),
            "Date": formatdate(usegmt=True),
            "Server": "AmazonS3",
            "x-amz-request-id": request_id,
        }
    )
    return OriginResponse(status=status, reason=None, headers=headers, body=body)


def _no_such_key(key: str) -> OriginResponse:
    return s3_error(404, "NoSuchKey", "The specified key does not exist.", key)


def _access_denied(key: str) -> OriginResponse:
    return s3_error(403, "AccessDenied", "Access Denied", key)


def _not_modified(headers: CIMultiDict[str], etag: str, mtime: float) -> bool:
    if "If-None-Match" in headers:
        return etag in [tag.strip() for tag in headers["If-None-Match"].split(",")] or headers["If-None-Match"] == "*"
    if "If-Modified-Since" in headers:
        try:
            since = parsedate_to_datetime(headers["If-Modified-Since"]).timestamp()
        except (TypeError, ValueError):
            return False
        return int(mtime) <= since
    return False


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
            yield chunk
