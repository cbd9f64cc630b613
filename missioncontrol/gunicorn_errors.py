"""gunicorn's answer to a request it cannot parse (a request line over its
limit, a malformed header), in the API's JSON error shape.

gunicorn writes those answers itself, as HTML, through ``gunicorn.util.
write_error``, before any application code runs and before it knows the
path. ``install()`` (gunicorn.conf.py's post_worker_init) replaces that one
function in the worker with one that writes ``{"detail", "code"}``: the
shape every API client expects; a browser never sends such a request. The
message gunicorn composed, which quotes the request, is not sent.
"""

from __future__ import annotations

import json

from gunicorn import util

from missioncontrol.errorpages import error_body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps(error_body(int(status_int))).encode()
    head = (
        f"HTTP/1.1 {int(status_int)} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    util.write_error = write_json_error
