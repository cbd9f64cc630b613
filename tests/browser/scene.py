"""A small, realistic board built through the real services."""

from dataclasses import dataclass

from planning import services as planning_services
from planning.models import PlanningTask
from retries import services
from retries.models import Attempt
from tests.factories import AgentFactory, PlanFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import ago, launch, report


@dataclass
class Scene:
    failed: PlanningTask
    failed_too: PlanningTask
    running: PlanningTask
    blocked: PlanningTask


def _fail_in_phase(task: PlanningTask, *, run_id: str, message: str) -> Attempt:
    attempt = launch(task)
    report(task, status="running", native_run_id=run_id, attempt=attempt, phase="preflight")
    services.attempt_record_phase(attempt_id=attempt.id, phase="preflight", outcome="passed", actor="executor")
    services.attempt_record_phase(
        attempt_id=attempt.id, phase="execute", outcome="failed", message=message, actor="executor"
    )
    return attempt


def build() -> Scene:
    owner = AgentFactory(name="owner-bot")
    aemeath = AgentFactory(name="aemeath")
    AgentFactory(name="shorekeeper")
    AgentFactory(name="cartethyia", kind="human")
    project = ProjectFactory(slug="policy-protocol", name="Policy protocol", owner=owner)
    procedure = ProcedureFactory(
        slug="aemeath-index", name="Index creation", phases=["preflight", "execute", "finalize"], max_attempts=3
    )
    plan = PlanFactory(name="nightly-indexes", project=project)

    def task(n: int, title: str, **kw) -> PlanningTask:
        return TaskFactory(
            slug=f"policy-protocol-index-creation-proc-{n}",
            title=title,
            project=project,
            procedure=procedure,
            plan=plan,
            assignee=aemeath,
            **kw,
        )

    failed = task(0, "Create the policy index on the protocol store")
    _fail_in_phase(failed, run_id="nr-8812-1", message="index build timed out: lock wait exceeded on protocol_store")
    # A stale legacy executor reports a run created before the attempt: refused.
    report(failed, status="running", native_run_id="nr-7700-9", created_at=ago(3600))

    failed_too = task(1, "Rebuild the protocol search index")
    _fail_in_phase(failed_too, run_id="nr-8813-1", message="executor lost its worker")

    running = task(2, "Backfill policy references")
    attempt = launch(running)
    report(running, status="running", native_run_id="nr-8814-1", attempt=attempt)
    services.attempt_record_phase(attempt_id=attempt.id, phase="preflight", outcome="passed", actor="executor")

    done = task(3, "Verify the policy index checksums")
    attempt = launch(done)
    for phase in procedure.phases:
        services.attempt_record_phase(attempt_id=attempt.id, phase=phase, outcome="passed", actor="executor")

    task(4, "Compact the protocol archive")  # draft

    blocked = task(5, "Migrate the retention rules", max_attempts=1)
    _fail_in_phase(blocked, run_id="nr-8815-1", message="schema drift in the retention table")
    services.task_retry_or_block(task_id=blocked.id)

    planning_services.project_update(slug=project.slug, owner="cartethyia", actor="admin")
    for t in (failed, failed_too, running, blocked):
        t.refresh_from_db()
    return Scene(failed=failed, failed_too=failed_too, running=running, blocked=blocked)
