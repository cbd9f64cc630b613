"""Against DNS rebinding, a try connects to the address it checked, while
TLS still names (SNI) and verifies the URL's host: a TLS receiver on
loopback with a certificate for hooks.example.test, a name that resolves
nowhere."""

import http.server
import shutil
import ssl
import subprocess
import threading

import pytest
import requests

from missioncontrol.alerts.services import _post

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture
def tls_receiver(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=hooks.example.test",
            "-addext",
            "subjectAltName=DNS:hooks.example.test",
        ],
        check=True,
        capture_output=True,
    )
    seen: dict[str, list] = {"sni": [], "host": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen["host"].append(self.headers.get("Host"))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, cert, seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def trusting(monkeypatch):
    """The requests session trusts the test certificate (it ignores the
    environment, so REQUESTS_CA_BUNDLE would not do)."""

    def use(cert):
        post = requests.Session.post
        monkeypatch.setattr(
            requests.Session, "post", lambda self, *a, **k: post(self, *a, **{**k, "verify": str(cert)})
        )

    return use


def test_connects_to_the_checked_address_and_verifies_the_urls_host(tls_receiver, trusting):
    port, cert, seen = tls_receiver
    trusting(cert)
    response = _post(f"https://hooks.example.test:{port}/hook", "127.0.0.1", b"{}", {"X-Test": "1"})
    assert response.status_code == 204
    assert seen == {"sni": ["hooks.example.test"], "host": [f"hooks.example.test:{port}"]}


def test_a_certificate_for_another_host_is_refused(tls_receiver, trusting):
    port, cert, seen = tls_receiver
    trusting(cert)
    with pytest.raises(requests.exceptions.SSLError, match=r"doesn't match|hostname"):
        _post(f"https://other.example.test:{port}/hook", "127.0.0.1", b"{}", {})
    assert seen["host"] == []
