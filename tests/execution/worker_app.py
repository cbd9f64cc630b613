"""The Celery app as the test workers run it: the project's app, consuming
and producing on the queue of one test process (so parallel test processes
never take each other's messages), with broker options a test may shorten."""

import json
import os

from missioncontrol.celery import app

app.conf.task_default_queue = os.environ["MC_TEST_QUEUE"]
app.conf.broker_transport_options = {
    **(app.conf.broker_transport_options or {}),
    **json.loads(os.environ.get("MC_TEST_TRANSPORT_OPTIONS", "{}")),
}
