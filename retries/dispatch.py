"""Hand work to Celery only after the transaction that decided it commits.

A launch enqueued inside the transaction could run before the attempt row
is visible, or run for an attempt whose transaction then rolled back."""

from __future__ import annotations

import uuid

from django.db import transaction

# Executors that need us to push the launch. The ``external`` executor pulls
# its work through the API, so nothing is enqueued for it.
PUSHING_EXECUTORS = frozenset({"local", "http"})


def launch_after_commit(*, attempt_id: uuid.UUID, executor: str) -> None:
    if executor not in PUSHING_EXECUTORS:
        return

    def enqueue() -> None:
        from retries.tasks import launch_attempt  # noqa: PLC0415 - deferred, see [tool.importlinter]

        launch_attempt.delay(str(attempt_id))

    transaction.on_commit(enqueue, robust=True)


def cancel_after_commit(*, attempt_id: uuid.UUID, executor: str) -> None:
    if executor not in PUSHING_EXECUTORS:
        return

    def enqueue() -> None:
        from retries.tasks import cancel_attempt  # noqa: PLC0415 - deferred, see [tool.importlinter]

        cancel_attempt.delay(str(attempt_id))

    transaction.on_commit(enqueue, robust=True)


def launch_again(*, attempt_id: uuid.UUID) -> None:
    """Send a launch again now (reconciliation, for a launch message that
    was lost); launching is idempotent, so a duplicate changes nothing."""
    from retries.tasks import launch_attempt  # noqa: PLC0415 - deferred, see [tool.importlinter]

    launch_attempt.delay(str(attempt_id))
