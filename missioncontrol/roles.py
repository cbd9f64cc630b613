"""Roles are Django groups; a superuser has all of them.

viewer reads; operator also creates and edits tasks, launches, reruns,
repairs and cancels; executor reads tasks and reports native runs and phases;
admin also manages agents, projects and procedures (and can do what an
operator can); metrics reads GET /metrics and nothing else (a scraper's
token: it reads no task, no API endpoint and no dashboard page)."""

from __future__ import annotations

VIEWER = "viewer"
OPERATOR = "operator"
EXECUTOR = "executor"
ADMIN = "admin"
METRICS = "metrics"
ROLES = (VIEWER, OPERATOR, EXECUTOR, ADMIN, METRICS)

# What each role may do, beyond reading (every role may read).
_IMPLIED = {
    VIEWER: {VIEWER},
    OPERATOR: {VIEWER, OPERATOR},
    EXECUTOR: {VIEWER, EXECUTOR},
    ADMIN: {VIEWER, OPERATOR, ADMIN},
    METRICS: {METRICS},
}


def user_roles(user) -> set[str]:
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, "_mc_roles", None)
    if cached is None:
        names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        cached = set().union(*(_IMPLIED[n] for n in names)) if names else set()
        user._mc_roles = cached
    return cached


def has_role(user, role: str) -> bool:
    return role in user_roles(user)


def actor_name(user) -> str:
    """How a user is named in the ledger."""
    return user.get_username() if user is not None and user.is_authenticated else "anonymous"
