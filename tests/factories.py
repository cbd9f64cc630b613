"""Factories for test data. Tasks and plans are made through the services,
so the ledger records them exactly as in production."""

import factory

from planning import services as planning_services
from planning.models import Agent, Plan, PlanningTask, Procedure, Project


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"agent-{n}")
    kind = Agent.Kind.AI
    active = True


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    owner = factory.SubFactory(AgentFactory)


class ProcedureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Procedure
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"procedure-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    phases = factory.LazyFunction(lambda: ["preflight", "execute", "finalize"])
    executor = Procedure.Executor.EXTERNAL
    max_attempts = 3
    stall_timeout_seconds = 300


class PlanFactory(factory.Factory):
    class Meta:
        model = Plan

    name = factory.Sequence(lambda n: f"plan-{n}")
    project = factory.SubFactory(ProjectFactory)
    on_error = Plan.OnError.CONTINUE

    @classmethod
    def _create(cls, model_class, *, name, project, on_error):
        return planning_services.plan_create(name=name, project=project.slug, on_error=on_error, actor="tests")


class TaskFactory(factory.Factory):
    class Meta:
        model = PlanningTask

    slug = factory.Sequence(lambda n: f"task-{n}")
    title = factory.LazyAttribute(lambda o: f"Task {o.slug}")
    project = factory.SubFactory(ProjectFactory)
    procedure = factory.SubFactory(ProcedureFactory)
    plan = None
    params = factory.LazyFunction(dict)
    assignee = None
    max_attempts = None

    @classmethod
    def _create(cls, model_class, *, slug, title, project, procedure, plan, params, assignee, max_attempts):
        return planning_services.task_create(
            slug=slug,
            title=title,
            project=project.slug,
            procedure=procedure.slug,
            plan=plan.id if plan else None,
            params=params,
            assignee=assignee.name if assignee else None,
            max_attempts=max_attempts,
            actor="tests",
        )


# The executor names the tests report as; an executor token is granted all
# of them (create_api_token --executor), never the built-in "local".
TEST_EXECUTORS = ("ext", "e", "external", "http", "cloud", "legacy-runtime", "bench", "soak")
