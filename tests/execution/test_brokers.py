"""The switch between brokers of the worker tests (conftest ``_use_broker``)."""

import threading

from missioncontrol.celery import app as celery_app
from tests.execution.conftest import _use_broker


def test_a_broker_published_to_before_a_switch_still_takes_publishes_after():
    """Celery's pools come from kombu's registry, one per broker URL: a
    switch must not leave a drained pool there for the next user of that
    URL (it made every publish wait forever, in the worker tests that ran
    after the alert tests had published on the same Redis)."""
    url = celery_app.conf.broker_write_url
    with celery_app.producer_or_acquire():  # a publish, as an earlier test makes
        pass
    _use_broker(url)

    published = threading.Event()

    def publish() -> None:
        with celery_app.producer_or_acquire():
            published.set()

    threading.Thread(target=publish, daemon=True).start()
    assert published.wait(10), "no producer within 10 s: the pool of this broker has no free slot"
