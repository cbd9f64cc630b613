"""API credentials beyond DRF's token: which executors a token may report as."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ExecutorGrant(models.Model):
    """One executor an API user may report native runs and phase outcomes
    for (``create_api_token --role executor --executor NAME``). An executor
    token with no grant reports for nobody: confinement is the default."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="executor_grants")
    executor = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "executor"], name="executor_grant_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} may report as {self.executor}"
