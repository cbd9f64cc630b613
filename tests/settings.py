"""The settings the test suite runs with: the project's own, production-strict
settings (``DEBUG`` off), with only what the tests need pinned, so that plain
``pytest`` passes with no environment variable set.

The services' defaults are put into the environment, not only into these
settings, because the suite starts processes that read it (the Celery
workers of tests/execution, the benchmarks of tests/bench). A value that is
already set wins: that is how ``make test`` isolates a run (TEST_DATABASE_URL,
TEST_BROKER_URL, TEST_RABBITMQ_URL). ``.ci/services.sh`` starts these services.

The production settings themselves are tested through ``manage.py`` in a
subprocess (tests/test_settings.py), never through this module.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/missioncontrol")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# The real-worker tests run on Redis (above) and again on RabbitMQ, in a vhost
# of their own (made by .ci/services.sh).
os.environ.setdefault("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/mc_test")
# Production refuses to start without a key; this one signs nothing outside the tests.
os.environ.setdefault("SECRET_KEY", "tests-only-not-secret-" + "k" * 40)

from missioncontrol.settings import *  # noqa: F403
from missioncontrol.settings import STORAGES

# The test client and live_server speak plain HTTP on loopback: no redirect to
# https, cookies sent without TLS, and the hosts they use.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1", "[::1]"]
# The worker tests wait for stalls in real time with timeouts of 1-2 s; the
# production default (5 s) would add that much to each. Coalescing itself is
# tested with the default (tests/retries/test_heartbeats.py).
HEARTBEAT_COALESCE_SECONDS = 0.5
# Static files come from the finders, as under runserver: no collectstatic
# (and no manifest) before the tests; WhiteNoise stays in the middleware.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# The brokers the real-worker tests run on, by test id (tests/execution/conftest.py).
TEST_BROKERS = {"redis": os.environ["CELERY_BROKER_URL"], "rabbitmq": os.environ["TEST_RABBITMQ_URL"]}
