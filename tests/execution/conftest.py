"""A real Celery worker process on a real broker, and a real HTTP gateway on
loopback, for the execution tests.

Every test that uses the worker runs twice, once per broker: Redis
(``CELERY_BROKER_URL``) and RabbitMQ (``TEST_RABBITMQ_URL``, a vhost of its
own); the test ids end in ``[redis]`` or ``[rabbitmq]``. The test process
publishes to the broker of the test, and the worker consumes from it. The
``broker`` fixture is in tests/conftest.py: the alert and log workers
(tests/observe_worker.py) run on both brokers too.

Each pytest process gets its own queue (named after its xdist worker id and
pid): the test process publishes to it and its worker consumes only it, so
parallel test processes never take each other's messages, on either broker.
The worker talks to the pytest-django test database, so the tests that use
it are ``transaction=True`` (the worker must see committed rows)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from kombu import pools

from missioncontrol.celery import app as celery_app
from retries.integrity import integrity_problems

ROOT = Path(__file__).resolve().parents[2]
WORKER_GROUP = "execution-worker"
GATEWAY_TIMEOUT = 1.5  # seconds the workers' http executor waits for the gateway
# The brokers of settings.TEST_BROKERS, in the order they run, and the URL
# schemes each may be given.
BROKERS = {"redis": ("redis", "rediss"), "rabbitmq": ("amqp", "amqps", "pyamqp")}


def wait_for(predicate: Callable[[], object], *, timeout: float = 60, interval: float = 0.1, what: str = "condition"):
    """Poll until ``predicate`` returns something truthy and return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Worker:
    """``celery worker`` as a subprocess in its own process group, so a test
    can SIGKILL the whole worker (main process and pool children) at once."""

    def __init__(
        self,
        *,
        queue: str,
        db_name: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        concurrency: int = 2,
        broker_url: str | None = None,
    ) -> None:
        self.queue = queue
        # The broker the test process publishes to unless told otherwise.
        self.broker_url = broker_url or celery_app.conf.broker_write_url
        self.node = f"{queue}@localhost"
        self.db_name = db_name
        self.log_path = log_path
        self.extra_env = env or {}
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 60) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db_name}",
            "CELERY_BROKER_URL": self.broker_url,
            "MC_TEST_QUEUE": self.queue,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        start_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.execution.worker_app",
                "worker",
                "-Q",
                self.queue,
                "-n",
                self.node,
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            with open(self.log_path, "rb") as fh:
                fh.seek(start_offset)
                return b" ready." in fh.read()

        wait_for(ready, timeout=timeout, what="the Celery worker to be ready")
        return self

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the main process and its pool children: no warm shutdown,
        no message given back; only the broker's redelivery can recover."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close_log()

    def stop(self) -> None:
        if not self.alive():
            self._close_log()
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_idle(self, timeout: float = 60) -> None:
        """Until the queue is empty and the worker runs nothing, twice in a
        row (a running task may enqueue the next one)."""

        def idle() -> bool:
            waiting = queue_length(self.queue)
            active = celery_app.control.inspect(destination=[self.node], timeout=1).active() or {}
            return waiting == 0 and not any(active.values())

        wait_for(lambda: idle() and idle(), timeout=timeout, interval=0.3, what="the worker to go idle")


@contextmanager
def publishing_nowhere(queue: str) -> Iterator[None]:
    """Tasks published inside the block go to ``queue``, where no worker
    listens (a lost message, or one still in flight); the queue is dropped
    afterwards and publishing goes back where it was."""
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        yield
    finally:
        celery_app.conf.task_default_queue = previous
        purge(queue, forget=True)


def queue_length(queue: str) -> int:
    """Messages waiting in ``queue`` on the current broker (not those a
    worker holds unacknowledged); a queue that does not exist has none."""
    with celery_app.connection_for_write() as conn:
        if conn.transport.driver_type == "redis":
            return conn.default_channel.client.llen(queue)
        # A passive declare only asks; on a missing queue the broker closes
        # the channel, so it gets a channel of its own.
        try:
            with conn.channel() as channel:
                return channel.queue_declare(queue=queue, passive=True).message_count
        except conn.channel_errors:
            return 0


def purge(queue: str, *, forget: bool = False) -> None:
    """Drop the queue's waiting messages; with ``forget``, also what the
    broker keeps to route to it (Redis: kombu's binding keys; RabbitMQ: the
    queue and its exchange), once nothing will publish to it again."""
    with celery_app.connection_for_write() as conn:
        if conn.transport.driver_type == "redis":
            keys = [queue]
            if forget:
                keys += [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
            conn.default_channel.client.delete(*keys)
            return
        if forget:
            # Celery names a queue's exchange after the queue; deleting what
            # does not exist is no error for RabbitMQ.
            with conn.channel() as channel:
                channel.queue_delete(queue)
                channel.exchange_delete(queue)
            return
        try:
            with conn.channel() as channel:
                channel.queue_purge(queue)
        except conn.channel_errors:
            pass  # no such queue: nothing waits in it


def _use_broker(url: str) -> None:
    """Point this process's Celery app at ``url``: publishing, inspecting
    and purging go there from now on.

    The broker connections pooled so far are closed, and their pools
    forgotten: Celery takes its connection and producer pools from kombu's
    registry (``kombu.pools``), one per broker URL for the whole process. A
    pool closed but left there has no free slot left, and is handed back
    as it is when its URL is used again (the Redis of the first worker tests,
    after the alert tests published there): every publish then waits
    forever for a connection, and the worker receives nothing."""
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    # The write and read URLs, because CELERY_BROKER_URL in the environment
    # would win over a changed broker_url.
    celery_app.conf.broker_write_url = url
    celery_app.conf.broker_read_url = url


class Gateway:
    """A small HTTP gateway for the ``http`` executor on 127.0.0.1: records
    every request, answers 503 to the first ``refuse_first`` launches (to
    exercise retries with backoff), creates one native run per
    Idempotency-Key, and hands each new launch to ``on_launch`` on a thread."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.runs: dict[str, dict] = {}
        self.polls: dict[str, dict] = {}
        self.refuse_first = 0
        self.stall_first = 0.0
        self.on_launch: Callable[[dict], None] | None = None
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Idempotency-Key")
                with gateway.lock:
                    gateway.requests.append({"method": "POST", "path": self.path, "key": key, "body": body})
                    if self.path.endswith("/cancel"):
                        return self._json(202, {"cancelled": True})
                    if gateway.refuse_first > 0:
                        gateway.refuse_first -= 1
                        return self._json(503, {"detail": "busy"})
                    run = gateway.runs.get(key)
                    new = run is None
                    if new:
                        run = {"native_task_id": f"gw-task-{key}", "native_run_id": f"gw-run-{key}", "launch": body}
                        gateway.runs[key] = run
                if new and gateway.on_launch is not None:
                    thread = threading.Thread(target=gateway.on_launch, args=(run,), daemon=True)
                    gateway.threads.append(thread)
                    thread.start()
                with gateway.lock:
                    stall, gateway.stall_first = gateway.stall_first, 0.0
                if stall:
                    # The launch is taken, but the answer comes too late: the
                    # caller times out and must not make a second run by retrying.
                    time.sleep(stall)
                return self._json(201 if new else 200, {k: run[k] for k in ("native_task_id", "native_run_id")})

            def do_GET(self):
                attempt_id = self.path.rstrip("/").rsplit("/", 1)[-1]
                with gateway.lock:
                    gateway.requests.append({"method": "GET", "path": self.path})
                    state = gateway.polls.get(attempt_id)
                if state is None:
                    return self._json(404, {"detail": "unknown"})
                return self._json(200, state)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)
        with self.lock:
            self.requests.clear()
            self.runs.clear()
            self.polls.clear()
            self.refuse_first = 0
            self.stall_first = 0.0
            self.on_launch = None
            self.threads = []

    def launches(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST" and r["path"] == "/launches"]


@pytest.fixture(scope="session")
def worker_queue(worker_id) -> str:
    return f"mc-exec-{worker_id}-{os.getpid()}"


@pytest.fixture(scope="session")
def http_gateway():
    gateway = Gateway()
    gateway.thread.start()
    yield gateway
    gateway.server.shutdown()
    gateway.server.server_close()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, broker, worker_queue, http_gateway, tmp_path_factory):
    """One worker for this test process and broker, on its own queue, with
    the test database, the loopback gateway and the local executor's fault
    injection."""
    purge(worker_queue)
    worker = Worker(
        queue=worker_queue,
        db_name=connection.settings_dict["NAME"],
        broker_url=broker,
        log_path=tmp_path_factory.mktemp("worker") / "worker.log",
        # The execution tests drive the local executor's phases through task
        # params (retries/demo/faults.py), whatever DEBUG says.
        env={
            "HTTP_EXECUTOR_URL": http_gateway.url,
            "HTTP_EXECUTOR_TIMEOUT": str(GATEWAY_TIMEOUT),
            "LOCAL_EXECUTOR_FAULTS": "1",
        },
    )
    worker.start()
    yield worker
    worker.stop()
    purge(worker_queue, forget=True)


@pytest.fixture
def worker(celery_worker, transactional_db, http_gateway):
    """The running worker for one test, which publishes to its queue for
    the test's duration only (other tests of this process keep theirs).
    After the test: the worker has finished everything the test started,
    and rows agree with the ledger (checked here, before the flush)."""
    assert celery_worker.alive(), celery_worker.log_tail()
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = celery_worker.queue
    try:
        yield celery_worker
        celery_worker.wait_idle()
    finally:
        celery_app.conf.task_default_queue = previous
        http_gateway.reset()
    problems = integrity_problems()
    assert not problems, "rows disagree with the ledger:\n" + "\n".join(map(str, problems))
