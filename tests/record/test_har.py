"""record/har.py: exchanges as HAR 1.2 entries (checked against a HAR 1.2 schema written from the spec's fields),
files written as exchanges complete, and readers that take a file cut short, a byte-order mark, or a browser's HAR."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import jsonschema
import pytest
from aiohttp import web

from edgeproxy.record.har import HEAD, TAIL, Entries, HarFile, RecordingError, body_of, cookie_date, header_pairs, read
from edgeproxy.testing import start

SCHEMA = json.loads((Path(__file__).parents[2] / "fixtures" / "har" / "har-1.2.schema.json").read_text())
BINARY = bytes(range(256)) * 8
ZIPPED = gzip.compress(b"zipped " * 200)


def origin_app() -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/zipped":
            return web.Response(body=ZIPPED, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
        if request.path == "/binary":
            return web.Response(body=BINARY, content_type="application/octet-stream")
        response = web.Response(text=f"echo {await request.read()!r}", reason="Fine")
        response.headers.add("Set-Cookie", "a=1; Path=/; HttpOnly")
        response.headers.add("Set-Cookie", "b=2")
        response.headers.add("Set-Cookie", "c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure")
        response.headers.add("Set-Cookie", "d=4; expires=Thu, 01-Jan-70 00:00:01 GMT")  # as browsers read it: 1970
        response.headers.add("Set-Cookie", "e=5; Expires=soon")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


GENERATE = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/generated":
        return {"status": "302", "headers": {"location": [{"value": "/elsewhere"}]}}
    if request["uri"] == "/broken":
        return {"status": "not a number"}
    return request
"""
STAMP = """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-stamp"] = [{"value": "1"}]
    return response
"""


async def recorded(tmp_path: Path) -> list[dict[str, Any]]:
    (tmp_path / "generate.py").write_text(GENERATE)
    (tmp_path / "stamp.py").write_text(STAMP)
    recording = tmp_path / "r.har"
    proxy = await start(
        origin=origin_app(),
        viewer_request=f"{tmp_path}/generate.py:handler",
        origin_response=f"{tmp_path}/stamp.py:handler",
        recording=recording,
        record_mode="all",
    )
    try:
        for method, target, body, headers in [
            ("GET", "/page?tag=a&tag=b&q=x%20y", None, [("X-Twice", "1"), ("X-Twice", "2"), ("Cookie", "s=1; t=2")]),
            ("POST", "/upload", b"\x00\x01binary\xff", [("Content-Type", "application/octet-stream")]),
            ("GET", "/zipped", None, []),
            ("GET", "/binary", None, []),
            ("GET", "/generated", None, []),
            ("GET", "/broken", None, []),
        ]:
            async with proxy.client.request(method, target, data=body, headers=headers, allow_redirects=False):
                pass
    finally:
        await proxy.close()
    document = json.loads(recording.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["log"]["creator"]["name"] == "edgeproxy"
    assert document["log"]["pages"] == []
    entries: list[dict[str, Any]] = document["log"]["entries"]
    return entries


async def test_a_recording_is_har_1_2_with_the_pipeline_inside(tmp_path: Path) -> None:
    page, upload, zipped, binary, generated, broken = await recorded(tmp_path)
    for entry in (page, upload, zipped, binary, generated, broken):
        timings = entry["timings"]
        assert entry["time"] == pytest.approx(
            sum(value for value in timings.values() if value >= 0) - timings["ssl"] - 1
        )
        assert entry["serverIPAddress"] == "127.0.0.1"
        assert entry["cache"] == {}
        assert entry["_mode"] == "cloudfront"
        assert entry["_behavior"] == "*"
        assert entry["_requestId"] == dict((h["name"], h["value"]) for h in entry["response"]["headers"])["X-Amz-Cf-Id"]

    request = page["request"]
    assert request["url"].endswith("/page?tag=a&tag=b&q=x%20y")
    assert request["queryString"] == [
        {"name": "tag", "value": "a"},
        {"name": "tag", "value": "b"},
        {"name": "q", "value": "x y"},
    ]
    assert [h["value"] for h in request["headers"] if h["name"] == "X-Twice"] == ["1", "2"]
    assert request["cookies"] == [{"name": "s", "value": "1"}, {"name": "t", "value": "2"}]
    response = page["response"]
    assert (response["status"], response["statusText"]) == (200, "Fine")
    assert [c["name"] for c in response["cookies"]] == ["a", "b", "c", "d", "e"]
    assert response["cookies"][0]["httpOnly"] is True
    # HAR 1.2: "expires | string | Cookie expiration time. (ISO 8601)"; left out when it is not a date.
    assert [c.get("expires") for c in response["cookies"]] == [
        None,
        None,
        "2026-10-21T07:28:00.000Z",
        "1970-01-01T00:00:01.000Z",
        None,
    ]
    assert [h["value"] for h in response["headers"] if h["name"].lower() == "set-cookie"][:2] == [
        "a=1; Path=/; HttpOnly",
        "b=2",
    ]
    assert [h["name"] for h in response["headers"]][-4:] == ["X-Cache", "Via", "X-Amz-Cf-Pop", "X-Amz-Cf-Id"]
    assert [invocation["trigger"] for invocation in page["_invocations"]] == ["viewer-request", "origin-response"]
    stamp = page["_invocations"][1]
    assert stamp["event"]["Records"][0]["cf"]["config"]["eventType"] == "origin-response"
    assert stamp["result"]["headers"]["x-stamp"] == [{"key": "X-Stamp", "value": "1"}]
    assert (stamp["error"], stamp["time"] >= 0) == (None, True)

    assert upload["request"]["postData"] == {
        "mimeType": "application/octet-stream",
        "text": base64.b64encode(b"\x00\x01binary\xff").decode(),
        "_encoding": "base64",
    }
    assert body_of(upload["request"]["postData"]) == b"\x00\x01binary\xff"
    assert body_of(upload["_origin"]["request"]["postData"]) == b"\x00\x01binary\xff"

    # Bodies exactly as they went: the compressed one stays compressed, in base64, on both sides.
    assert zipped["response"]["content"]["encoding"] == "base64"
    assert body_of(zipped["response"]["content"]) == ZIPPED
    assert body_of(zipped["_origin"]["response"]["content"]) == ZIPPED
    assert body_of(binary["response"]["content"]) == BINARY
    assert binary["_origin"]["request"]["url"].startswith("http://127.0.0.1:")
    assert [h["name"] for h in binary["_origin"]["request"]["headers"]][-1] == "X-Amz-Cf-Id"

    assert generated["_origin"] is None
    assert generated["response"]["redirectURL"] == "/elsewhere"
    assert generated["_skipped"]["origin"] == "viewer-request generated a response"

    assert broken["response"]["status"] == 502
    error = broken["_invocations"][0]["error"]
    assert (error["status"], error["name"]) == (502, "LambdaValidationError")
    assert "response.status" in error["reason"]
    assert broken["_error"]["name"] == "LambdaValidationError"


def test_the_file_is_whole_after_every_entry_and_takes_writers_from_several_processes(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    one, other = HarFile(path), HarFile(path)  # two writers, as two worker processes would have
    assert json.loads(path.read_text())["log"]["entries"] == []
    one.append({"n": 1})
    other.append({"n": 2})
    one.append({"n": 3})
    assert [e["n"] for e in json.loads(path.read_text())["log"]["entries"]] == [1, 2, 3]
    one.close()
    other.close()
    assert path.read_text().startswith(HEAD)
    assert path.read_text().endswith(TAIL)


def test_a_file_cut_short_keeps_every_whole_entry(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    file = HarFile(path)
    for n in range(3):
        file.append({"startedDateTime": f"2026-12-01T00:00:0{n}.000Z", "n": n})
    file.close()
    text = path.read_text()
    # (where the file ends, the entries read back, whether it counts as cut short)
    for cut, kept, cut_short in [
        (len(text) - 1, 3, False),  # only the last newline lost: still whole JSON
        (len(text) - len(TAIL), 3, True),  # every entry written, the closing brackets not
        (len(text) - len(TAIL) - 5, 2, True),  # in the middle of the last entry
    ]:
        path.write_text(text[:cut])
        recording = read(path)
        assert ([e["n"] for e in recording.entries], recording.cut_short) == (list(range(kept)), cut_short)
    with pytest.raises(RecordingError, match="cannot add to it"):
        HarFile(path)


def test_only_the_last_line_is_checked_whole_when_read_the_others_when_used(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    file = HarFile(path)
    for n in range(3):
        file.append({"startedDateTime": f"2026-12-01T00:00:0{n}.000Z", "n": n, "inner": {"a": n}, "z": n})
    file.close()
    text = path.read_text()
    # Cut just after the last entry's inner object: the line still ends with "}", and is not whole.
    path.write_text(text[: text.rindex('{"a":2}') + len('{"a":2}')])
    recording = read(path)
    assert ([e["n"] for e in recording.entries], recording.cut_short) == ([0, 1], True)
    # A line damaged in the middle of the file (no writer of edgeproxy's leaves one) is found when it is read.
    path.write_text(text.replace('"inner":{"a":1}', '"inner":{"a":1'))
    recording = read(path)
    assert (len(recording.entries), recording.cut_short) == (3, False)
    assert recording.entries[2]["n"] == 2
    with pytest.raises(RecordingError, match=r"line 3 \(entry 2 by start time\) is not a whole JSON object"):
        recording.entries[1]
    # A line edited by hand into another shape is parsed when read, and kept.
    path.write_text(
        text.replace(
            '{"startedDateTime":"2026-12-01T00:00:01.000Z"', '  { "n": 1, "startedDateTime":"2026-12-01T00:00:01.000Z"'
        )
    )
    assert [e["n"] for e in read(path).entries] == [0, 1, 2]


def test_an_edgeproxy_recording_is_read_an_entry_at_a_time_sorted_by_start(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    file = HarFile(path)
    for n, second in enumerate([3, 1, 2, 1]):
        file.append({"startedDateTime": f"2026-12-01T00:00:0{second}.000Z", "n": n})
    file.append({"startedDateTime": "2026-12-01T00:00:04.000Z", "n": 4, "text": "\udcff"})  # written by json
    file.close()
    recording = read(path)
    assert isinstance(recording.entries, Entries)  # not a list: parsed when asked for
    assert [entry["n"] for entry in recording.entries] == [1, 3, 2, 0, 4]  # ties keep the order they were written in
    assert (recording.entries[-1]["text"], recording.entries[1:3]) == (
        "\udcff",
        [{"startedDateTime": ANY, "n": 3}, {"startedDateTime": ANY, "n": 2}],
    )
    recording.entries[0]["n"] = 99  # a copy: the file's entry is unchanged
    assert recording.entries[0]["n"] == 1
    with pytest.raises(IndexError):
        recording.entries[5]
    whole = json.loads(path.read_text())["log"]["entries"]
    assert [entry["n"] for entry in whole] == [0, 1, 2, 3, 4]
    assert recording.entries == sorted(whole, key=lambda entry: entry["startedDateTime"])  # as a list compares
    assert recording.entries != whole
    more = HarFile(path)  # appending while it is read: what was read is still there
    more.append({"startedDateTime": "2026-12-01T00:00:05.000Z", "n": 5})
    more.close()
    assert [entry["n"] for entry in recording.entries] == [1, 3, 2, 0, 4]


def test_an_entrys_head_is_all_but_its_invocations(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    file = HarFile(path)
    tricky = {"name": "x-note", "value": ',"_invocations":[1]}'}  # inside a string: escaped, not the field
    record = {"startedDateTime": "2026-12-01T00:00:01.000Z", "request": {"headers": [tricky]}, "_mode": "cloudfront"}
    file.append({**record, "_invocations": [{"trigger": "viewer-request", "event": {"big": "x" * 1000}}]})
    file.append({**record, "startedDateTime": "2026-12-01T00:00:02.000Z"})  # none: the whole entry
    file.close()
    recording = read(path)
    assert recording.head(0) == record
    assert recording.entries[0]["_invocations"][0]["trigger"] == "viewer-request"
    assert recording.head(1) == recording.entries[1]
    assert recording.is_edgeproxys
    assert list(recording.heads()) == [record, recording.entries[1]]


def test_an_entrys_origin_exchange_is_read_alone(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    file = HarFile(path)
    tricky = {"name": "x-note", "value": ',"_origin":{"request":1},"_invocations":[]'}  # escaped: not a field
    origin = {"request": {"method": "GET", "url": "http://o:80/a", "headers": [tricky]}, "response": {"status": 200}}
    record = {"startedDateTime": "2026-12-01T00:00:01.000Z", "request": {"headers": [tricky]}, "_mode": "cloudfront"}
    file.append({**record, "_origin": origin, "_invocations": [{"trigger": "origin-request"}]})
    file.append({**record, "_origin": None, "_invocations": []})  # the origin was not contacted
    file.append({**record, "_origin": {**origin, "text": "\udcff"}, "_invocations": []})  # written by json
    file.append({**record, "_origin": origin})  # no invocations after it: read from the entry
    file.close()
    recording = read(path)
    assert [recording.origin(n) for n in range(4)] == [entry["_origin"] for entry in recording.entries]
    assert recording.origin(0) == origin
    assert recording.origin(1) is None


def test_a_file_with_edgeproxys_head_but_not_an_entry_a_line_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    file = HarFile(path)
    file.append({"startedDateTime": "2026-12-01T00:00:01.000Z", "n": 1})
    file.close()
    head, _, rest = path.read_text().partition("\n")
    path.write_text(head + "\n" + json.dumps(json.loads(head + rest)["log"]["entries"][0], indent=2) + "\n]}}\n")
    recording = read(path)
    assert ([entry["n"] for entry in recording.entries], recording.cut_short) == ([1], False)


def test_readers_take_a_byte_order_mark_browser_header_shapes_and_sort_by_start(tmp_path: Path) -> None:
    path = tmp_path / "browser.har"
    entries = [
        {"startedDateTime": "2026-12-01T10:00:01.000+01:00", "request": {"headers": [["a", "1"]]}},
        {"startedDateTime": "2026-12-01T08:59:59.500Z", "request": {"headers": [{"name": "b", "value": "2"}]}},
    ]
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"log": {"version": "1.2", "entries": entries}}, indent=2).encode())
    recording = read(path)
    assert [header_pairs(e["request"]["headers"]) for e in recording.entries] == [[("b", "2")], [("a", "1")]]
    assert not recording.is_edgeproxys
    path.write_text("<html>not har</html>")
    with pytest.raises(RecordingError, match="not a HAR file"):
        read(path)
    with pytest.raises(RecordingError, match="cannot be read"):
        read(tmp_path / "missing.har")


@pytest.mark.parametrize(
    ("date", "iso"),
    [
        ("Wed, 21 Oct 2026 07:28:00 GMT", "2026-10-21T07:28:00.000Z"),  # RFC 1123
        ("Wednesday, 21-Oct-26 07:28:00 GMT", "2026-10-21T07:28:00.000Z"),  # RFC 850
        ("Wed Oct 21 07:28:00 2026", "2026-10-21T07:28:00.000Z"),  # asctime
        ("21 October 1999 7:8:9", "1999-10-21T07:08:09.000Z"),
        ("Sat, 29 Feb 2025 00:00:00 GMT", None),  # not a day of that month
        ("Wed, 21 Oct 1600 07:28:00 GMT", None),  # before 1601
        ("Wed, 21 Oct 2026 24:00:00 GMT", None),
        ("tomorrow", None),
    ],
)
def test_a_cookie_date_is_read_as_browsers_read_it(date: str, iso: str | None) -> None:
    assert cookie_date(date) == iso


def test_a_line_that_is_not_an_entry_before_the_last_is_damage_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    file = HarFile(path)
    for n in range(4):
        file.append({"startedDateTime": f"2026-12-01T00:00:0{n}.000Z", "n": n})
    file.close()
    lines = path.read_text().split("\n")
    for damaged in (1, 3, 4):  # the first entry's line, one in the middle, the last one (the closing brackets follow)
        cut = lines.copy()
        cut[damaged] = cut[damaged][:10]  # cut off short: it does not even look like an entry
        path.write_text("\n".join(cut))
        with pytest.raises(RecordingError, match=rf"r.har: line {damaged + 1} is not a whole JSON object"):
            read(path)
