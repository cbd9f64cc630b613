from django.apps import AppConfig


class RetriesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "retries"
