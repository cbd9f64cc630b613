"""API credentials. Users and tokens are not domain state, but their
creation still goes through one function the command calls."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from missioncontrol.errors import invalid
from missioncontrol.roles import ROLES


def api_token_create(*, username: str, role: str) -> Token:
    """Create the user if needed, put it in ``role`` and return its token
    (the existing one if it has one)."""
    if role not in ROLES:
        raise invalid({"role": [f"Use one of: {', '.join(ROLES)}."]})
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
        token, _ = Token.objects.get_or_create(user=user)
    return token
