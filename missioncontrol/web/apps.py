from django.apps import AppConfig


class WebConfig(AppConfig):
    """The operator dashboard: an installed app so Django finds its template
    tags (``{% load dashboard %}``); its templates are in ``templates/``."""

    name = "missioncontrol.web"
    label = "web"
