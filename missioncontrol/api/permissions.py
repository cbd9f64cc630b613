"""Roles from missioncontrol/roles.py as DRF permissions. Every role reads;
a view names the role its writes need in ``write_role``."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from missioncontrol.errors import ServiceError
from missioncontrol.roles import VIEWER, decide_report_as, has_role, user_executors


class RolePermission(BasePermission):
    message = "Your role does not allow this request."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return has_role(request.user, VIEWER)
        role = getattr(view, "write_role", None)
        return role is not None and has_role(request.user, role)


def check_report_as(user, executors: list[str], *, indexed: bool = False) -> None:
    """403 ``executor_not_allowed`` unless ``user`` may report as every one
    of ``executors`` (``decide_report_as``). ``indexed``: the executors are a
    batch's reports in order, and the errors name each refused report."""
    granted = user_executors(user)
    refusals = {}
    for i, executor in enumerate(executors):
        refusal = decide_report_as(executor=executor, superuser=bool(user.is_superuser), granted=granted)
        if refusal is not None:
            refusals[str(i) if indexed else "executor"] = refusal
    if not refusals:
        return
    first = next(iter(refusals.values()))
    if not indexed:
        raise ServiceError("executor_not_allowed", first.reason, errors={"executor": [first.reason]})
    raise ServiceError(
        "executor_not_allowed",
        f"{len(refusals)} of {len(executors)} reports name an executor this token may not report as; "
        f"none was applied. {first.reason}",
        errors={i: {"executor": [r.reason]} for i, r in refusals.items()},
    )
