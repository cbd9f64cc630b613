"""Roles from missioncontrol/roles.py as DRF permissions. Every role reads;
a view names the role its writes need in ``write_role``."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from missioncontrol.roles import VIEWER, has_role


class RolePermission(BasePermission):
    message = "Your role does not allow this request."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return has_role(request.user, VIEWER)
        role = getattr(view, "write_role", None)
        return role is not None and has_role(request.user, role)
