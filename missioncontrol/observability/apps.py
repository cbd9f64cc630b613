from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Metrics, structured logs and their Celery plumbing; GET /metrics.
    Registers the ledger listeners that count and log committed facts."""

    name = "missioncontrol.observability"
    label = "observability"

    def ready(self) -> None:
        from django.db.models.signals import post_init

        from planning.ledger import ledger_listener
        from planning.models import PlanningTask

        from . import signals  # noqa: F401 - connects the Celery receivers
        from .logs import log_facts, remember_task_slug
        from .metrics import count_facts

        ledger_listener(count_facts)
        ledger_listener(log_facts)
        post_init.connect(remember_task_slug, sender=PlanningTask, weak=False, dispatch_uid="mc-task-slugs")
