"""Roles are Django groups; a superuser has all of them.

viewer reads; operator also creates and edits tasks, launches, reruns,
repairs and cancels; executor reads tasks and reports native runs and phases;
admin also manages agents, projects and procedures (and can do what an
operator can); metrics reads GET /metrics and nothing else (a scraper's
token: it reads no task, no API endpoint and no dashboard page)."""

from __future__ import annotations

from dataclasses import dataclass

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
        cached = roles_of(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._mc_roles = cached
    return cached


def roles_of(groups) -> set[str]:
    """The roles a member of these role groups has (a role implies others)."""
    names = [n for n in groups if n in _IMPLIED]
    return set().union(*(_IMPLIED[n] for n in names)) if names else set()


def has_role(user, role: str) -> bool:
    return role in user_roles(user)


def actor_name(user) -> str:
    """How a user is named in the ledger."""
    return user.get_username() if user is not None and user.is_authenticated else "anonymous"


# The built-in executor runs inside Mission Control's own worker and reports
# through the services directly; no API token may speak for it. The same
# value as planning's Procedure.Executor.LOCAL, which this shared kernel may
# not import (tests/decisions/test_report_as.py keeps them equal).
LOCAL_EXECUTOR = "local"


@dataclass(frozen=True)
class ExecutorRefusal:
    """Why a token may not report as an executor (API code ``executor_not_allowed``)."""

    executor: str
    reason: str


def decide_report_as(*, executor: str, superuser: bool, granted: frozenset[str]) -> ExecutorRefusal | None:
    """May a user with these grants report native runs or phase outcomes as
    ``executor``? None when it may; the refusal and its reason otherwise.
    Executor tokens are confined to the executors granted to them
    (``create_api_token --executor``); a superuser may report as any
    executor but the built-in one."""
    if executor == LOCAL_EXECUTOR:
        return ExecutorRefusal(
            executor,
            "The built-in 'local' executor reports from inside Mission Control; no API token may report as it.",
        )
    if superuser or executor in granted:
        return None
    if not granted:
        return ExecutorRefusal(
            executor,
            "This token is confined to no executor; create it with "
            "'create_api_token NAME --role executor --executor EXECUTOR'.",
        )
    return ExecutorRefusal(
        executor,
        f"This token may report only as {', '.join(sorted(granted))}; not as {executor!r}.",
    )


def user_executors(user) -> frozenset[str]:
    """The executors granted to ``user`` (read once per request object)."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_mc_executors", None)
    if cached is None:
        cached = frozenset(user.executor_grants.values_list("executor", flat=True))
        user._mc_executors = cached
    return cached
