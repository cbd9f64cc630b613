"""Through the real production stack: gunicorn with the committed
gunicorn.conf.py, DEBUG off, a secret key and allowed hosts, behind a TLS
proxy (X-Forwarded-Proto), on a free loopback port. Long URLs, foreign
charsets, unparseable headers and a database outage are all answered in the
API's JSON shape under /api/ and never with a stack trace."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
HTTPS = {"X-Forwarded-Proto": "https"}

# django_db: pytest-django sets the test database up only when a test of the
# run asks for it; the servers use that database.
pytestmark = [pytest.mark.xdist_group("gunicorn"), pytest.mark.django_db]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(port: int | None = None) -> str:
    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    return f"postgres://{s.get('USER') or 'postgres'}@{host}:{port or s.get('PORT') or 5432}/{s['NAME']}"


class Server:
    def __init__(self, tmp: Path, database: str):
        self.port = free_port()
        self.database = database
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
        env.update(
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            BEHIND_TLS_PROXY="1",
            DATABASE_URL=database,
            MISSIONCONTROL_VAR_DIR=str(tmp),
            LOG_LEVEL="WARNING",
        )
        self.log = open(tmp / f"gunicorn-{self.port}.log", "wb")  # noqa: SIM115 - closed in stop(), after the server
        self.process = subprocess.Popen(
            [
                str(GUNICORN),
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--timeout",
                "60",
                "missioncontrol.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.wait_until_up(tmp)
        except BaseException:
            # Never leave a server behind: a failed start stops it too.
            self.stop()
            raise

    def wait_until_up(self, tmp: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (tmp / f"gunicorn-{self.port}.log").read_text()
            try:
                requests.get(self.base + "/api/v1/", headers=HTTPS, timeout=20)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        raise AssertionError("gunicorn did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def get(self, path: str, **kwargs) -> requests.Response:
        headers = {**HTTPS, **kwargs.pop("headers", {})}
        return requests.get(self.base + path, headers=headers, timeout=30, allow_redirects=False, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        headers = {**HTTPS, **kwargs.pop("headers", {})}
        return requests.post(self.base + path, headers=headers, timeout=30, allow_redirects=False, **kwargs)

    def raw(self, request: bytes) -> bytes:
        """Send bytes as they are; read the whole answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        url = database_url()
    running = Server(tmp_path_factory.mktemp("gunicorn"), url)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def outage(django_db_setup, django_db_blocker, tmp_path_factory):
    """The same stack with its database unreachable."""
    with django_db_blocker.unblock():
        url = database_url(port=free_port())
    running = Server(tmp_path_factory.mktemp("gunicorn-outage"), url)
    yield running
    running.stop()


def assert_json_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].split(";")[0] == "application/json", response.headers
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and set(body) <= {"detail", "code", "errors"}
    assert "Traceback" not in response.text
    return body


def test_the_stack_is_up_with_debug_off(server):
    response = server.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}, server.database
    # DEBUG is off: the production headers are there.
    assert "Strict-Transport-Security" in response.headers
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("length", [4100, 6000, 8000])
def test_a_long_query_string_is_a_json_414_from_django(server, length):
    body = assert_json_error(server.get("/api/v1/tasks/?search=" + "x" * length), 414, "uri_too_long")
    assert "4096" in body["detail"]


def test_a_long_dashboard_url_is_a_414_page(server):
    response = server.get("/?q=" + "x" * 5000)
    assert response.status_code == 414 and response.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in response.text


def test_a_request_line_past_gunicorns_own_limit_is_json_too(server):
    answer = server.raw(b"GET /api/v1/tasks/?search=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414"), head
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["code"] == "uri_too_long"


def test_a_malformed_request_is_answered_by_gunicorn_in_json(server):
    answer = server.raw(b"GET /api/v1/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["code"] == "bad_request"


@pytest.mark.parametrize("charset", ["rot13", "utf-16", "x-unknown"])
def test_a_foreign_charset_is_refused_before_django_builds_the_request(server, charset):
    content_type = f"application/x-www-form-urlencoded; charset={charset}"
    # rot13 would fail inside Django while it decodes the query string.
    assert_json_error(
        server.get("/api/v1/tasks/?q=x", headers={"Content-Type": content_type}), 415, "unsupported_media_type"
    )
    assert_json_error(
        server.post("/api/v1/tasks/?q=x", data=b"a=b", headers={"Content-Type": content_type}),
        415,
        "unsupported_media_type",
    )
    for path in ("/accounts/login/?next=/", "/tasks/x/rerun/"):
        response = server.post(path, data=b"username=a&password=b", headers={"Content-Type": content_type})
        assert response.status_code == 400 and response.headers["Content-Type"].startswith("text/html")
        assert "Traceback" not in response.text


def test_an_unparseable_content_type_is_a_400(server):
    # An RFC 2231 parameter naming an unknown charset: Django raises while
    # building the request, before any middleware.
    headers = {"Content-Type": "application/json; charset*=bogus''utf-8"}
    assert_json_error(server.post("/api/v1/tasks/", data=b"{}", headers=headers), 400, "bad_request")


def test_nul_and_unknown_paths_under_the_api(server):
    assert_json_error(server.get("/api/v1/tasks/%00/"), 400, "invalid")
    assert_json_error(server.get("/api/v2/"), 404, "not_found")
    assert_json_error(server.get("/api/v1/tasks/", headers={"Host": "evil.example"}), 400, "bad_request")


def test_a_body_over_the_limit_is_a_json_413(server):
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    # Only the headers and two bytes are sent: the answer comes before the body.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/api/v1/native-runs/batch/")
    for name, value in {**HTTPS, "Content-Type": "application/json", "Content-Length": str(limit + 1)}.items():
        conn.putheader(name, value)
    conn.endheaders(b"{}")
    response = conn.getresponse()
    assert response.status == 413 and response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read())["code"] == "too_large"
    conn.close()


def test_a_database_outage_is_a_json_500_and_a_plain_page(outage):
    body = assert_json_error(outage.get("/api/v1/tasks/", headers={"Authorization": "Token abc"}), 500, "server_error")
    assert "psycopg" not in json.dumps(body)
    # A well-formed session key: the session is looked up in the database.
    page = outage.get("/", headers={"Cookie": "sessionid=" + "a" * 32})
    assert page.status_code == 500 and page.headers["Content-Type"].startswith("text/html")
    assert "Server error" in page.text and "Traceback" not in page.text and "psycopg" not in page.text
    assert outage.get("/healthz").status_code == 503
