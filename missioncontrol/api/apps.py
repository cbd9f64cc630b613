from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API: its management command (``create_api_token``) and the
    executor grants that confine executor tokens (``models.ExecutorGrant``)."""

    name = "missioncontrol.api"
    label = "api"

    def ready(self) -> None:
        # The schema's field extensions register on import.
        from . import schema  # noqa: F401
