import pytest

from missioncontrol.celery import app as celery_app
from tests.alerts.receiver import Receiver

SECRET = "s3cret-for-tests-only-0123456789"


@pytest.fixture
def allow_private(settings):
    """Loopback receivers, as WEBHOOKS_ALLOW_PRIVATE=1 admits them."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOK_BACKOFF_SECONDS = 0.2
    settings.WEBHOOK_TIMEOUT_SECONDS = 2


@pytest.fixture
def receiver():
    made = Receiver(SECRET)
    yield made
    made.stop()


@pytest.fixture
def eager():
    """Celery tasks run inline, where the point is the HTTP exchange."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
