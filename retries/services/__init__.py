"""State changes of attempts and native runs (rules 1-7 and 9 of DESIGN.md).

Every service is one ``transaction.atomic()`` that locks its rows with
``select_for_update()`` in the fixed order task -> attempt -> native run
(the plan row, when its status is refreshed, last), reads the facts, asks
the one decision of ``retries.decisions`` that governs it, applies the
answer (saving only the fields it changed), appends the ledger events with
the decision's reason and enqueues Celery work with ``on_commit``. A
single-item service is its batch service called with one item.

- ``requests``: an operator's launch, rerun (one or many), repair, cancel;
- ``automatic``: retry or block, stall, launch pick-up, lagging tasks;
- ``phases``: phase outcomes; ``reports``: native run reports and binding;
- ``heartbeats``: a report that only says "still running", in one statement;
- ``previews``: what a rerun or repair would do, without writing;
- ``attempts``: the one writer of new attempts; ``facts``: rows to facts.
"""

from .automatic import (
    attempt_fail,
    attempt_fail_if_stalled,
    attempt_mark_launching,
    task_retry_or_block,
    task_retry_or_block_many,
    task_sync_with_attempt,
)
from .base import AttemptResult, deferred_plan_refresh
from .heartbeats import Heartbeat, native_run_heartbeat, native_run_report_one
from .idempotency import idempotency_keys_expire
from .phases import attempt_record_phase
from .previews import ActionPreview, TaskPagePreviews, task_page_previews, task_repair_previews, task_rerun_previews
from .reports import (
    RunReport,
    known_runs_clear,
    native_run_report,
    native_run_report_batch,
    native_run_try_bind,
)
from .requests import (
    MAX_BULK_RERUN,
    REASON_MAX_LENGTH,
    check_reason,
    task_cancel,
    task_launch,
    task_repair,
    task_rerun,
    task_rerun_many,
)

__all__ = [
    "MAX_BULK_RERUN",
    "REASON_MAX_LENGTH",
    "ActionPreview",
    "AttemptResult",
    "Heartbeat",
    "RunReport",
    "TaskPagePreviews",
    "attempt_fail",
    "attempt_fail_if_stalled",
    "attempt_mark_launching",
    "attempt_record_phase",
    "check_reason",
    "deferred_plan_refresh",
    "idempotency_keys_expire",
    "known_runs_clear",
    "native_run_heartbeat",
    "native_run_report",
    "native_run_report_batch",
    "native_run_report_one",
    "native_run_try_bind",
    "task_cancel",
    "task_launch",
    "task_page_previews",
    "task_repair",
    "task_repair_previews",
    "task_rerun",
    "task_rerun_many",
    "task_rerun_previews",
    "task_retry_or_block",
    "task_retry_or_block_many",
    "task_sync_with_attempt",
]
