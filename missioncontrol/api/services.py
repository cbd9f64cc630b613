"""API credentials. Users and tokens are not domain state, but their
creation still goes through one function the command calls."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from missioncontrol.errors import invalid
from missioncontrol.roles import EXECUTOR, ROLES, decide_report_as

from .models import ExecutorGrant

# What a native run's executor column holds.
EXECUTOR_NAME_MAX: int = ExecutorGrant._meta.get_field("executor").max_length or 50


def _executor_errors(role: str, executors: tuple[str, ...]) -> list[str]:
    if executors and role != EXECUTOR:
        return ["Only an executor token is confined to executors; drop --executor or use --role executor."]
    errors = []
    for name in executors:
        if not name or len(name) > EXECUTOR_NAME_MAX or not name.isprintable() or name != name.strip():
            errors.append(f"{name!r} is not an executor name (1 to {EXECUTOR_NAME_MAX} printable characters).")
        elif refusal := decide_report_as(executor=name, superuser=False, granted=frozenset({name})):
            errors.append(refusal.reason)
    return errors


def api_token_create(*, username: str, role: str, executors: tuple[str, ...] = ()) -> Token:
    """Create the user if needed, put it in ``role`` and return its token
    (the existing one if it has one). An executor token is confined to
    ``executors`` (added to what it had): it reports as no other."""
    if role not in ROLES:
        raise invalid({"role": [f"Use one of: {', '.join(ROLES)}."]})
    if errors := _executor_errors(role, executors):
        raise invalid({"executor": errors})
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            user = User(username=username)
            user.set_unusable_password()
            try:
                user.full_clean(exclude=["password"])
            except Exception as exc:  # a ValidationError with the username's messages
                raise invalid({"username": [str(m) for m in getattr(exc, "messages", [exc])]}) from exc
            user.save()
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
        for name in sorted(set(executors)):
            ExecutorGrant.objects.get_or_create(user=user, executor=name)
        token, _ = Token.objects.get_or_create(user=user)
    return token
