"""A real Celery worker for the alert and log tests, as tests/execution
has one: its own queue per test process, the test database, the settings
these tests need (loopback receivers admitted, short backoff, JSON logs).
Like the execution worker, it runs on each broker in turn (the ``broker``
fixture of tests/conftest.py): the tests that use it run twice, ids ending
in ``[redis]`` and ``[rabbitmq]``. tests/conftest.py loads this module as
a plugin: one worker for both directories."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from missioncontrol.celery import app as celery_app
from tests.execution.conftest import Worker, purge

OBSERVE_WORKER_GROUP = "observe-worker"


@pytest.fixture(scope="session")
def observe_celery_worker(django_db_setup, django_db_blocker, broker, worker_id, tmp_path_factory):
    queue = f"mc-observe-{worker_id}-{os.getpid()}"
    purge(queue)
    worker = Worker(
        queue=queue,
        db_name=connection.settings_dict["NAME"],
        broker_url=broker,
        log_path=tmp_path_factory.mktemp("observe-worker") / "worker.log",
        env={
            "WEBHOOKS_ALLOW_PRIVATE": "1",
            "WEBHOOK_BACKOFF_SECONDS": "0.5",
            "WEBHOOK_TIMEOUT_SECONDS": "2",
            "LOG_FORMAT": "json",
            "LOCAL_EXECUTOR_FAULTS": "1",
        },
    )
    try:
        yield worker.start()
    finally:
        worker.stop()  # also when it never got ready: nothing is left running
        purge(queue, forget=True)


@pytest.fixture
def observe_worker(observe_celery_worker, transactional_db, settings):
    """The worker, which this test process publishes to for the test."""
    assert observe_celery_worker.alive(), observe_celery_worker.log_tail()
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = observe_celery_worker.queue
    try:
        yield observe_celery_worker
        observe_celery_worker.wait_idle()
    finally:
        celery_app.conf.task_default_queue = previous
