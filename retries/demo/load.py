"""The demo situation of seed 000 (``manage.py demo``), built through the
services so the ledger records it exactly as it would have happened, and
the demo users.

The four tasks are created as drafts, then the operator's preserved
``planning-retry-history.json`` (shipped in ``retries/demo_data/``) is
imported: each task gets its failed attempt #1 from the old runtime as
history, superseded, with its native ids retired. No attempt is current, so
reconciliation leaves the tasks alone until an operator reruns them (the
import never makes the next attempt). Rerunning one starts a fresh attempt on
the ``local`` executor, whose phases then behave as the task's params say:
proc-0 passes, proc-1 stalls once in ``execute`` and resumes there, proc-2
fails once in ``finalize`` and retries only that phase, the sentinel keeps
failing in ``execute`` until the budget blocks it (``faults``). Meanwhile
the old runtime keeps reporting its old run, and every report is refused
(``stale``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from missioncontrol.roles import OPERATOR, VIEWER
from planning import services as planning_services
from planning.models import Agent, Plan, PlanningTask, Procedure, Project
from retries.history import retry_history_import

from .procedures import DEMO_PROCEDURES

ACTOR = "demo"
HISTORY_FILE = Path(__file__).resolve().parent.parent / "demo_data" / "planning-retry-history.json"

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
    params: dict = field(default_factory=dict)
    in_plan: bool = False


TASKS = [
    DemoTask(
        "policy-protocol-index-creation-proc-0",
        "Create the policy protocol index, shard 0",
        "policy-protocol",
        "aemeath",
        "aemeath",
        params={},
        in_plan=True,
    ),
    DemoTask(
        "policy-protocol-index-creation-proc-1",
        "Create the policy protocol index, shard 1",
        "policy-protocol",
        "aemeath",
        "aemeath",
        params={"stall_phase": "execute", "stall_on_attempts": [2]},
        in_plan=True,
    ),
    DemoTask(
        "policy-protocol-index-creation-proc-2",
        "Create the policy protocol index, shard 2",
        "policy-protocol",
        "aemeath",
        "aemeath",
        params={
            "fail_phase": "finalize",
            "fail_on_attempts": [2],
            "fail_message": "could not publish the index manifest",
        },
        in_plan=True,
    ),
    DemoTask(
        "high-signal-governance-stability-sentinel-proc-1",
        "Stability sentinel, run 1",
        "high-signal-governance",
        "shorekeeper",
        "shorekeeper",
        params={"fail_phase": "execute", "fail_on_attempts": [2, 3], "fail_message": "sentinel threshold breached"},
    ),
]


def history_entries() -> list[dict]:
    """The old runtime's attempts as the operator preserved them."""
    return json.loads(HISTORY_FILE.read_text())["entries"]


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
            slug=slug,
            name=spec["name"],
            phases=spec["phases"],
            executor=Procedure.Executor.LOCAL,
            max_attempts=spec["max_attempts"],
            stall_timeout_seconds=spec["stall_timeout_seconds"],
            actor=ACTOR,
        )
        report.created.append(f"procedure {slug}")


def _plan(report: DemoReport) -> Plan:
    plan = Plan.objects.filter(name=PLAN_NAME, project__slug="policy-protocol").first()
    if plan is not None:
        report.existing.append(f"plan {PLAN_NAME}")
        return plan
    report.created.append(f"plan {PLAN_NAME}")
    return planning_services.plan_create(name=PLAN_NAME, project="policy-protocol", actor=ACTOR)


def _task(spec: DemoTask, plan: Plan, report: DemoReport) -> None:
    if PlanningTask.objects.filter(slug=spec.slug).exists():
        report.existing.append(f"task {spec.slug}")
        return
    planning_services.task_create(
        slug=spec.slug,
        title=spec.title,
        project=spec.project,
        procedure=spec.procedure,
        plan=plan.id if spec.in_plan else None,
        params=spec.params,
        assignee=spec.assignee,
        actor=ACTOR,
    )
    report.created.append(f"task {spec.slug}")


def _history(report: DemoReport) -> None:
    # Importing the same file again changes nothing, so this is safe to repeat.
    result = retry_history_import(data=HISTORY_FILE.read_bytes(), actor=ACTOR)
    for attempt in result.imported:
        report.created.append(
            f"imported failed attempt #{attempt.number} of {attempt.task} (retired {', '.join(attempt.retired)})"
        )
    if result.skipped:
        report.existing.append(f"{len(result.skipped)} imported attempts")


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
    _history(report)
    return report
