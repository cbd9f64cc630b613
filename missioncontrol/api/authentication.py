"""Token authentication in one statement, cached for a few seconds per process.

DRF's ``TokenAuthentication`` reads the token with its user (one query), and
the role check then reads the user's groups (a second); confinement would add
a third for the executor grants. Every executor report paid for all three
before doing any work (issue 14's profile). Here one statement reads the
user, its role groups and its executor grants, and the answer is kept for
``API_AUTH_CACHE_SECONDS`` in this process. Changes made in this process
(a token, user, group membership or grant saved or deleted) drop the cache
at once; another process sees them within that many seconds.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from missioncontrol.roles import ROLES, roles_of

from .models import ExecutorGrant

_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Principal:
    user_id: int
    username: str
    is_active: bool
    is_superuser: bool
    groups: frozenset[str]
    executors: frozenset[str]


_lock = threading.Lock()
_cache: dict[str, tuple[float, _Principal | None]] = {}


def auth_cache_clear(**_kwargs) -> None:
    with _lock:
        _cache.clear()
    _user.cache_clear()


@functools.cache
def _sql() -> str:
    User = get_user_model()
    q = connection.ops.quote_name
    users, memberships = q(User._meta.db_table), q(User.groups.through._meta.db_table)
    groups, tokens, grants = q(Group._meta.db_table), q(Token._meta.db_table), q(ExecutorGrant._meta.db_table)
    user = f"u.id, u.{q(User.USERNAME_FIELD)}, u.is_active, u.is_superuser"
    # One row per group and per grant (a user with neither still gives one
    # row through the outer joins); the kind column tells them apart.
    return (
        f"SELECT {user}, 'g', g.name "
        f"FROM {tokens} t JOIN {users} u ON u.id = t.user_id "
        f"LEFT JOIN {memberships} m ON m.user_id = u.id "
        f"LEFT JOIN {groups} g ON g.id = m.group_id "
        f"WHERE t.key = %s "
        f"UNION ALL "
        f"SELECT {user}, 'e', e.executor "
        f"FROM {tokens} t JOIN {users} u ON u.id = t.user_id "
        f"JOIN {grants} e ON e.user_id = u.id "
        f"WHERE t.key = %s"
    )


def _read(key: str) -> _Principal | None:
    with connection.cursor() as cursor:
        cursor.execute(_sql(), [key, key])
        rows = cursor.fetchall()
    if not rows:
        return None
    user_id, username, is_active, is_superuser = rows[0][:4]
    return _Principal(
        user_id=user_id,
        username=username,
        is_active=bool(is_active),
        is_superuser=bool(is_superuser),
        groups=frozenset(name for _, _, _, _, kind, name in rows if kind == "g" and name in ROLES),
        executors=frozenset(name for _, _, _, _, kind, name in rows if kind == "e"),
    )


def principal(key: str) -> _Principal | None:
    ttl = settings.API_AUTH_CACHE_SECONDS
    now = time.monotonic()
    found = _cache.get(key)
    if found is not None and found[0] > now:
        return found[1]
    value = _read(key)
    if ttl > 0:
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + ttl, value)
    return value


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, read in one statement."""

    def authenticate_credentials(self, key):
        found = principal(key)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not found.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return _user(found), key


@functools.lru_cache(maxsize=1024)
def _user(found: _Principal):
    """The request's user, built once per principal read: a model instance
    costs more to build than the rest of a heartbeat's authentication. No
    request changes it (the API reads its name and roles only), so the
    threads of a process share it until the principal is read again."""
    User = get_user_model()
    user = User(id=found.user_id, is_active=True, is_superuser=found.is_superuser)
    setattr(user, User.USERNAME_FIELD, found.username)
    user._state.adding = False
    user._state.db = connection.alias
    # What missioncontrol.roles would read, read already.
    user._mc_roles = frozenset(roles_of(found.groups))  # type: ignore[attr-defined]  # missioncontrol.roles' cache
    user._mc_executors = found.executors  # type: ignore[attr-defined]
    return user


post_save.connect(auth_cache_clear, sender=Token, dispatch_uid="auth-cache-token-save")
post_delete.connect(auth_cache_clear, sender=Token, dispatch_uid="auth-cache-token-delete")
post_save.connect(auth_cache_clear, sender=ExecutorGrant, dispatch_uid="auth-cache-grant-save")
post_delete.connect(auth_cache_clear, sender=ExecutorGrant, dispatch_uid="auth-cache-grant-delete")
post_save.connect(auth_cache_clear, sender=Group, dispatch_uid="auth-cache-group-save")
post_delete.connect(auth_cache_clear, sender=Group, dispatch_uid="auth-cache-group-delete")
post_save.connect(auth_cache_clear, sender=settings.AUTH_USER_MODEL, dispatch_uid="auth-cache-user-save")
post_delete.connect(auth_cache_clear, sender=settings.AUTH_USER_MODEL, dispatch_uid="auth-cache-user-delete")
m2m_changed.connect(auth_cache_clear, sender=get_user_model().groups.through, dispatch_uid="auth-cache-groups")
