"""A small notes API on Powertools for AWS Lambda's ``ALBResolver``: a widely used ALB framework, unmodified.

Use case: the usual way to write a Lambda behind an ALB is a routing framework rather than a raw handler. This one
uses ``aws-lambda-powertools`` (``pip install aws-lambda-powertools``; it is in edgeproxy's ``dev`` extra), which
tells the header mode by the presence of ``multiValueHeaders`` and answers in the matching field.
Target: an ALB target group, single-value or multi-value headers.
What it does (module state persists between invocations, as in a warm Lambda):

* ``GET /``: ``{"status": "ok"}``, also the health checker's answer;
* ``GET /hello/<name>``: a greeting; the name is as the path carried it (ALB keeps percent-encoding);
* ``GET /search?q=...&q=...``: the ``q`` values, URL-decoded by the resolver (``decode_query_parameters``);
* ``POST /notes`` with a JSON object: ``201`` with a ``Location`` header; ``GET /notes/<id>`` reads it back;
* ``PUT /files/<name>`` with any body: stores the bytes and answers with their size and SHA-256;
  ``GET /files/<name>`` sends them back (base64 in the result, raw bytes on the wire);
* ``POST /login``: sets two cookies (``session`` and ``csrf``). Both reach the client with multi-value headers;
  in single-value mode powertools can only send the last one, and warns.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from typing import Any

from aws_lambda_powertools.event_handler import ALBResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.shared.cookies import Cookie

app = ALBResolver(decode_query_parameters=True)
NOTES: dict[str, dict[str, Any]] = {}
FILES: dict[str, tuple[str, bytes]] = {}
IDS = itertools.count(1)


def _header(name: str) -> str | None:
    """A request header in either mode (a list of values in multi-value mode: the last one)."""
    value = app.current_event.resolved_headers_field.get(name)
    return value[-1] if isinstance(value, list) else value


@app.get("/")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    return {"message": f"hello {name}"}


@app.get("/search")
def search() -> dict[str, list[str]]:
    return {"q": app.current_event.resolved_query_string_parameters.get("q", [])}


@app.post("/notes")
def create_note() -> Response[str]:
    note = app.current_event.json_body
    if not isinstance(note, dict):
        return Response(400, content_types.APPLICATION_JSON, '{"error": "a JSON object is required"}')
    note_id = str(next(IDS))
    NOTES[note_id] = note
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"id": note_id, **note}),
        headers={"Location": f"/notes/{note_id}"},
    )


@app.get("/notes/<note_id>")
def read_note(note_id: str) -> dict[str, Any]:
    if note_id not in NOTES:
        raise NotFoundError(f"no note {note_id}")
    return {"id": note_id, **NOTES[note_id]}


@app.put("/files/<name>")
def upload(name: str) -> dict[str, Any]:
    event = app.current_event
    body = event.body or ""
    data = base64.b64decode(body) if event.is_base64_encoded else body.encode()
    FILES[name] = (_header("content-type") or "application/octet-stream", data)
    return {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@app.get("/files/<name>")
def download(name: str) -> Response[bytes]:
    if name not in FILES:
        raise NotFoundError(f"no file {name}")
    content_type, data = FILES[name]
    return Response(status_code=200, content_type=content_type, body=data)


@app.post("/login")
def login() -> Response[str]:
    cookies = [
        Cookie(name="session", value="s3ss10n", path="/", http_only=True),
        Cookie(name="csrf", value="t0k3n", path="/"),
    ]
    return Response(200, content_types.APPLICATION_JSON, '{"logged_in": true}', cookies=cookies)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
