from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Signed alert webhooks: subscriptions, deliveries, and the ledger
    listener that turns committed facts into alerts."""

    name = "missioncontrol.alerts"
    label = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from planning.ledger import ledger_listener

        from .listener import enqueue_alerts

        ledger_listener(enqueue_alerts)
