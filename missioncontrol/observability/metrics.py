"""Prometheus series (docs/operations.md lists them with alert expressions).

Counters come from the ledger listener ``count_facts``: every process that
commits facts (web workers, Celery pool processes, a management command)
counts its own committed facts once, and prometheus-client's multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``: one file per process) sums them at
scrape time. Gauges that describe the database are read at scrape time by
``DatabaseCollector`` in a fixed number of queries, each through an index
that holds only unsettled rows, so a scrape costs the same with ten tasks
or ten million.

Without ``PROMETHEUS_MULTIPROC_DIR`` (a single process: runserver, tests)
the values live in this process's default registry."""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any, Self

from django.db.models import Min
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from missioncontrol.alerts.models import WebhookDelivery
from planning.ledger import PendingEvent
from planning.models import PlanningTask
from planning.services import task_status_counts
from retries.models import Attempt, NativeRun

LEDGER_EVENTS = Counter("mc_ledger_events", "Facts committed to the ledger, by event type.", ["type"])
ATTEMPTS_STARTED = Counter(
    "mc_attempts_started", "Attempts requested, by kind (initial, rerun, retry, repair).", ["kind"]
)
OPERATOR_ACTIONS = Counter(
    "mc_operator_actions",
    "Actions taken by a person or an integration (not by the system), by action.",
    ["action"],
)
TASK_STATUS_CHANGES = Counter("mc_task_status_changes", "Tasks moved to a status, by the status reached.", ["status"])
NATIVE_RUN_REPORTS = Counter(
    "mc_native_run_reports",
    "Native-run reports that changed something, by kind (new, status, late, conflicting).",
    ["kind"],
)
NATIVE_RUN_BINDINGS = Counter(
    "mc_native_run_bindings",
    "Binding decisions on native runs, by outcome (bound, rejected) and reason.",
    ["outcome", "reason"],
)
STALLS = Counter("mc_attempt_stalls", "Attempts failed as stalled (no heartbeat within the stall timeout).")
BUDGET_EXHAUSTIONS = Counter("mc_budget_exhaustions", "Tasks blocked because their retry budget was spent.")
INCONSISTENCIES = Counter("mc_tasks_marked_inconsistent", "Times a task was found disagreeing with the ledger.")
PLANS_PAUSED = Counter("mc_plans_paused", "Plans paused by their on_error policy.")

RECONCILE_DURATION = Histogram(
    "mc_reconcile_pass_duration_seconds",
    "Wall time of one reconciliation pass (the Celery task).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RECONCILE_PASSES = Counter(
    "mc_reconcile_passes", "Reconciliation passes, by result (done, skipped, failed).", ["result"]
)
RECONCILE_LAST_PASS = Gauge(
    "mc_reconcile_last_pass_timestamp_seconds",
    "Unix time at which the last reconciliation pass ended (skipped ones included).",
    multiprocess_mode="max",
)
HTTP_DURATION = Histogram(
    "mc_http_request_duration_seconds",
    "HTTP request latency, by view (the resolver's route name), method and status code.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_TRIES = Counter(
    "mc_webhook_delivery_tries",
    "Alert webhook delivery tries, by event and result (delivered, failed).",
    ["event", "result"],
)

# Who acts on behalf of the system; every other actor is a person or an integration.
SYSTEM_ACTOR = "system"
_ACTION_OF_ATTEMPT_KIND = {"initial": "launch", "rerun": "rerun", "repair": "repair"}
_ACTION_OF_TYPE = {
    "task.created": "task_create",
    "task.updated": "task_edit",
    "task.assignee_changed": "assignee_change",
    "plan.resumed": "plan_resume",
}


def operator_action(fact: PendingEvent) -> str | None:
    """The operator action a fact records, if it records one."""
    if fact.actor == SYSTEM_ACTOR:
        return None
    if fact.type == "attempt.requested":
        return _ACTION_OF_ATTEMPT_KIND.get(fact.data.get("kind") or "")
    if fact.type == "task.status_changed" and fact.data.get("status") == "cancelled":
        return "cancel"
    return _ACTION_OF_TYPE.get(fact.type)


def _report_kind(fact: PendingEvent) -> str | None:
    if fact.type == "native_run.reported":
        return "new" if fact.data.get("new") else "status"
    if fact.type == "native_run.late_report":
        return "late"
    if fact.type == "native_run.conflicting_report":
        return "conflicting"
    return None


def count_facts(facts: list[PendingEvent]) -> None:
    """The ledger listener: O(1) per fact, no queries. The increments are
    summed per counter and labels first and applied once each: a report
    batch appends a few hundred facts of a handful of kinds, and a
    ``labels()`` lookup per fact was a tenth of the batch's Python in
    cProfile."""
    counts: collections.Counter[tuple[Any, tuple[str, ...]]] = collections.Counter()
    for fact in facts:
        data = fact.data
        counts[(LEDGER_EVENTS, (fact.type,))] += 1
        action = operator_action(fact)
        if action is not None:
            counts[(OPERATOR_ACTIONS, (action,))] += 1
        if fact.type == "attempt.requested":
            counts[(ATTEMPTS_STARTED, (str(data.get("kind", "")),))] += 1
        elif fact.type == "attempt.status_changed":
            if data.get("kind") == "stalled":
                counts[(STALLS, ())] += 1
        elif fact.type == "task.status_changed":
            status = str(data.get("status", ""))
            counts[(TASK_STATUS_CHANGES, (status,))] += 1
            if status == "blocked" and data.get("reason") == "budget_exhausted":
                counts[(BUDGET_EXHAUSTIONS, ())] += 1
        elif fact.type == "native_run.bound":
            counts[(NATIVE_RUN_BINDINGS, ("bound", str(data.get("reason") or "")))] += 1
        elif fact.type == "native_run.rejected":
            counts[(NATIVE_RUN_BINDINGS, ("rejected", str(data.get("reason") or "")))] += 1
        elif fact.type == "task.marked_inconsistent":
            counts[(INCONSISTENCIES, ())] += 1
        elif fact.type == "plan.paused":
            counts[(PLANS_PAUSED, ())] += 1
        kind = _report_kind(fact)
        if kind is not None:
            counts[(NATIVE_RUN_REPORTS, (kind,))] += 1
    for (counter, labels), n in counts.items():
        (counter.labels(*labels) if labels else counter).inc(n)


class reconcile_timer:
    """Times one reconciliation pass into the histogram and the pass counter
    (the Celery task wraps ``reconcile_pass`` in it)."""

    def __enter__(self) -> Self:
        self.started = time.perf_counter()
        self.result = "failed"
        return self

    def done(self, *, skipped: bool) -> None:
        self.result = "skipped" if skipped else "done"

    def __exit__(self, *exc) -> None:
        RECONCILE_DURATION.observe(time.perf_counter() - self.started)
        RECONCILE_PASSES.labels(self.result).inc()
        RECONCILE_LAST_PASS.set(time.time())


# --- Scrape --------------------------------------------------------------------------


class DatabaseCollector:
    """Gauges read from the database at scrape time: a fixed number of
    queries, each bounded by unsettled rows, never by history."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        counts = task_status_counts()
        tasks = GaugeMetricFamily(
            "mc_tasks", "Tasks per status (the board's per-status projection).", labels=["status"]
        )
        for status in PlanningTask.Status.values:
            tasks.add_metric([status], counts.get(status, 0))
        yield tasks

        # Partial index task_inconsistent: only flagged tasks are read.
        inconsistent = PlanningTask.objects.filter(inconsistent_since__isnull=False).count()
        yield GaugeMetricFamily(
            "mc_tasks_inconsistent", "Tasks marked inconsistent, waiting for a repair.", value=inconsistent
        )

        # Partial index native_run_unbound, in id order: the first row is the oldest.
        oldest_run = (
            NativeRun.objects.filter(binding=NativeRun.Binding.UNBOUND)
            .order_by("id")
            .values_list("first_seen_at", flat=True)
            .first()
        )
        yield GaugeMetricFamily(
            "mc_native_run_unbound_oldest_age_seconds",
            "Age of the oldest native run neither bound nor rejected (0 when there is none): reconciliation lag.",
            value=_age(now, oldest_run),
        )
        # Partial index attempt_current_status: current attempts by status.
        oldest_launch = Attempt.objects.filter(
            superseded_at__isnull=True, status__in=(Attempt.Status.PENDING, Attempt.Status.LAUNCHING)
        ).aggregate(at=Min("requested_at"))["at"]
        yield GaugeMetricFamily(
            "mc_launch_pending_oldest_age_seconds",
            "Age of the oldest current attempt still pending or launching (0 when there is none).",
            value=_age(now, oldest_launch),
        )
        # Partial index webhook_delivery_undelivered: deliveries not yet delivered.
        undelivered = WebhookDelivery.undelivered_counts()
        waiting = GaugeMetricFamily(
            "mc_webhook_deliveries_undelivered",
            "Alert webhook deliveries not delivered, by state (retrying, gave_up).",
            labels=["state"],
        )
        for state in ("retrying", "gave_up"):
            waiting.add_metric([state], undelivered.get(state, 0))
        yield waiting


def _age(now, at) -> float:
    return max((now - at).total_seconds(), 0.0) if at is not None else 0.0


class _Chain:
    def __init__(self, *collectors) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def scrape_registry():
    """What one scrape exposes: the counters and histograms of every
    process (multiprocess mode) or of this one, and the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return _Chain(registry, DatabaseCollector())
    return _Chain(REGISTRY, DatabaseCollector())
