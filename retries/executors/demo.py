"""The demo situation of seed 000, built through the services so the ledger
records it exactly as it would have happened, and the stale runtime that
keeps reporting the old failed run.

Every task starts with one failed attempt whose native run came from the old
runtime (``legacy-runtime``), held (cancelled, with a reason) so that
reconciliation does not retry it before an operator reruns it. Rerunning one starts a fresh attempt on the
``local`` executor, whose phases then behave as the task's params say:
proc-0 passes, proc-1 stalls once in ``execute`` and resumes there,
proc-2 fails once in ``finalize`` and retries only that phase, the sentinel
keeps failing in ``execute`` until the budget blocks it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from missioncontrol.roles import OPERATOR, VIEWER
from planning import services as planning_services
from planning.models import Agent, Plan, PlanningTask, Procedure, Project
from retries import services
from retries.models import Attempt, NativeRun

from .local import DEMO_PROCEDURES

ACTOR = "demo"
LEGACY_EXECUTOR = "legacy-runtime"

AGENTS = [("thorny-hornet", Agent.Kind.HUMAN), ("aemeath", Agent.Kind.AI), ("shorekeeper", Agent.Kind.AI)]
PROJECTS = [
    ("policy-protocol", "Policy protocol", "thorny-hornet"),
    ("high-signal-governance", "High-signal governance", "thorny-hornet"),
]
PLAN_NAME = "policy-protocol index creation"


@dataclass(frozen=True)
class DemoTask:
    slug: str
    title: str
    project: str
    procedure: str
    assignee: str
    native_task_id: str
    native_run_id: str
    # Whether the old runtime stamped the attempt id on its run (the oldest did not).
    stamped: bool
    failure: str
    params: dict = field(default_factory=dict)
    in_plan: bool = False


TASKS = [
    DemoTask("policy-protocol-index-creation-proc-0", "Create the policy protocol index, shard 0", "policy-protocol",
             "aemeath", "aemeath", "nt-8812", "nr-8812-1", True, "runtime lost the index writer",
             params={}, in_plan=True),
    DemoTask("policy-protocol-index-creation-proc-1", "Create the policy protocol index, shard 1", "policy-protocol",
             "aemeath", "aemeath", "nt-8813", "nr-8813-1", True, "runtime stalled in execute",
             params={"stall_phase": "execute", "stall_on_attempts": [2]}, in_plan=True),
    DemoTask("policy-protocol-index-creation-proc-2", "Create the policy protocol index, shard 2", "policy-protocol",
             "aemeath", "aemeath", "nt-8814", "nr-8814-1", False, "index build timed out",
             params={"fail_phase": "finalize", "fail_on_attempts": [2], "fail_message": "could not publish the index manifest"},
             in_plan=True),
    DemoTask("high-signal-governance-stability-sentinel-proc-1", "Stability sentinel, run 1", "high-signal-governance",
             "shorekeeper", "shorekeeper", "nt-9120", "nr-9120-1", False, "sentinel probe failed",
             params={"fail_phase": "execute", "fail_on_attempts": [2, 3], "fail_message": "sentinel threshold breached"}),
]

HOLD_REASON = "Held for an operator: the old runtime's failure needs a reviewed rerun (seed 000)."

USERS = [("operator", OPERATOR), ("viewer", VIEWER)]


@dataclass
class DemoReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def _agents(report: DemoReport) -> None:
    for name, kind in AGENTS:
        if Agent.objects.filter(name=name).exists():
            report.existing.append(f"agent {name}")
            continue
        planning_services.agent_create(name=name, kind=kind, actor=ACTOR)
        report.created.append(f"agent {name}")


def _projects(report: DemoReport) -> None:
    for slug, name, owner in PROJECTS:
        if Project.objects.filter(slug=slug).exists():
            report.existing.append(f"project {slug}")
            continue
        planning_services.project_create(slug=slug, name=name, owner=owner, actor=ACTOR)
        report.created.append(f"project {slug}")


def _procedures(report: DemoReport) -> None:
    for slug, spec in DEMO_PROCEDURES.items():
        if Procedure.objects.filter(slug=slug).exists():
            report.existing.append(f"procedure {slug}")
            continue
        planning_services.procedure_create(
            slug=slug, name=spec["name"], phases=spec["phases"], executor=Procedure.Executor.LOCAL,
            max_attempts=spec["max_attempts"], stall_timeout_seconds=spec["stall_timeout_seconds"], actor=ACTOR,
        )
        report.created.append(f"procedure {slug}")


def _plan(report: DemoReport) -> Plan:
    plan = Plan.objects.filter(name=PLAN_NAME, project__slug="policy-protocol").first()
    if plan is not None:
        report.existing.append(f"plan {PLAN_NAME}")
        return plan
    report.created.append(f"plan {PLAN_NAME}")
    return planning_services.plan_create(name=PLAN_NAME, project="policy-protocol", actor=ACTOR)


def _report_old_run(spec: DemoTask, attempt: Attempt | None, status: str, message: str = "",
                    native_run_id: str | None = None, created_at: dt.datetime | None = None) -> NativeRun:
    run, _ = services.native_run_report(
        report=services.RunReport(
            executor=LEGACY_EXECUTOR,
            native_task_id=spec.native_task_id,
            native_run_id=native_run_id or spec.native_run_id,
            task=spec.slug,
            status=status,
            attempt_id=attempt.id if attempt is not None else None,
            created_at=created_at or timezone.now(),
            phase="execute",
            message=message,
        ),
        actor=LEGACY_EXECUTOR,
    )
    return run


def _task(spec: DemoTask, plan: Plan, report: DemoReport) -> None:
    if not PlanningTask.objects.filter(slug=spec.slug).exists():
        planning_services.task_create(
            slug=spec.slug, title=spec.title, project=spec.project, procedure=spec.procedure,
            plan=plan.id if spec.in_plan else None, params=spec.params, assignee=spec.assignee, actor=ACTOR,
        )
        report.created.append(f"task {spec.slug}")
    else:
        report.existing.append(f"task {spec.slug}")
    task = PlanningTask.objects.get(slug=spec.slug)
    if task.attempt_count:
        return
    # The failed first attempt, as the old runtime reported it.
    attempt = services.task_launch(slug=spec.slug, actor=ACTOR).attempt
    stamp = attempt if spec.stamped else None
    _report_old_run(spec, stamp, NativeRun.Status.RUNNING)
    _report_old_run(spec, stamp, NativeRun.Status.FAILED, message=spec.failure)
    # Held for an operator: reconciliation would otherwise retry a failed task
    # within seconds, and the point of the demo is the operator's fresh rerun.
    # The attempt stays failed with its diagnostics; rerun is allowed from here.
    services.task_cancel(slug=spec.slug, actor=ACTOR, reason=HOLD_REASON)
    report.created.append(f"failed attempt #1 of {spec.slug} ({spec.native_run_id}), held for a rerun")


def _users(report: DemoReport) -> None:
    User = get_user_model()
    for username, role in USERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            # Demo only: well-known passwords, printed by the command.
            user.set_password(username)
            user.save(update_fields=["password"])
            report.created.append(f"user {username}")
        else:
            report.existing.append(f"user {username}")
        user.groups.add(Group.objects.get(name=role))
    admin, created = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
    if created:
        admin.set_password("admin")
        admin.save(update_fields=["password"])
        report.created.append("user admin (superuser)")
    else:
        report.existing.append("user admin")


def demo_load() -> DemoReport:
    """Load the demo; running it again creates nothing new."""
    report = DemoReport()
    with transaction.atomic():
        _agents(report)
        _projects(report)
        _procedures(report)
        plan = _plan(report)
        _users(report)
    for spec in TASKS:
        _task(spec, plan, report)
    return report


def demo_stale_report() -> int:
    """The old runtime is still alive: it keeps reporting a relaunch of the
    old failed native task under the old attempt (or, for the oldest runs,
    with no attempt id). Mission Control refuses it every time, so it shows
    as rejected on the native runs page, its last-seen time moving."""
    sent = 0
    for spec in TASKS:
        old = NativeRun.objects.filter(executor=LEGACY_EXECUTOR, native_run_id=spec.native_run_id).first()
        if old is None:
            continue
        attempt = Attempt.objects.filter(id=old.attempt_id).first() if spec.stamped and old.attempt_id else None
        _report_old_run(spec, attempt, NativeRun.Status.RUNNING, message="relinking to the old task",
                        native_run_id=f"{spec.native_run_id}-relink")
        sent += 1
    return sent
