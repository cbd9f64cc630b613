"""Reads that span tasks and their attempts, phases and native runs (so they
live in ``retries``, which may import ``planning``; ``planning.selectors``
reads planning's own rows only). Each one costs a fixed number of queries
whatever the number of rows, one module per concept:

- ``tasks``: a task with its current attempt, diagnostics and timeline;
- ``plans``: plans with their counts and failed tasks;
- ``board``: the dashboard's triage board;
- ``task_detail``: the dashboard's task page;
- ``native_runs``: the dashboard's native runs page;
- ``attempts``: what the API checks of one attempt before a service call.

Everything public is importable from ``retries.selectors`` itself."""

from .attempts import attempt_executor
from .board import (
    ATTENTION_STATUSES,
    BoardFilters,
    FilterOptions,
    board_counts,
    board_filter_options,
    board_tasks,
    board_total,
    board_version,
    decorate_board_rows,
    needs_attention_q,
)
from .native_runs import TRIAGE_BINDINGS, attach_claimed_attempts, native_run_executors, native_runs_for_triage
from .plans import plan_failed_tasks, plan_list_with_projection, plans_queryset
from .task_detail import (
    PhaseChip,
    TaskDetail,
    active_agents,
    task_detail,
    task_events,
    task_version,
)
from .tasks import (
    attempts_for_task,
    count_of,
    current_attempts_prefetch,
    task_current_attempt,
    task_diagnostics,
    task_queryset,
)

__all__ = [
    "ATTENTION_STATUSES",
    "TRIAGE_BINDINGS",
    "BoardFilters",
    "FilterOptions",
    "PhaseChip",
    "TaskDetail",
    "active_agents",
    "attach_claimed_attempts",
    "attempt_executor",
    "attempts_for_task",
    "board_counts",
    "board_filter_options",
    "board_tasks",
    "board_total",
    "board_version",
    "count_of",
    "current_attempts_prefetch",
    "decorate_board_rows",
    "native_run_executors",
    "native_runs_for_triage",
    "needs_attention_q",
    "plan_failed_tasks",
    "plan_list_with_projection",
    "plans_queryset",
    "task_current_attempt",
    "task_detail",
    "task_diagnostics",
    "task_events",
    "task_queryset",
    "task_version",
]
