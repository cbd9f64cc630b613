from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API: an installed app so Django finds its management command
    (``create_api_token``); it has no models."""

    name = "missioncontrol.api"
    label = "api"
