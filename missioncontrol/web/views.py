"""The operator dashboard: thin views that parse, check the role, call one
service and render. With ``HX-Request`` a view renders only the fragment its
target asks for; without it the full page, so links and reloads work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from missioncontrol.alerts import selectors as alert_selectors
from missioncontrol.api.errors import status_for
from missioncontrol.errors import ServiceError
from missioncontrol.roles import ADMIN, OPERATOR, VIEWER, actor_name, has_role
from planning import services as planning_services
from planning.models import PlanningTask
from retries import selectors as sel
from retries import services as retry_services
from retries.decisions import CancelDecision, Refusal

from .forms import (
    BoardFilterForm,
    BoardRerunForm,
    CancelForm,
    DeliveryFilterForm,
    LaunchForm,
    NativeRunFilterForm,
    PlanRerunForm,
    PreviewOptionsForm,
    RepairForm,
    RerunForm,
    new_idempotency_key,
)

BOARD_PAGE_SIZE = 50
RERUNNABLE = (PlanningTask.Status.FAILED, PlanningTask.Status.BLOCKED)
PLANS_PAGE_SIZE = 20
RUNS_PAGE_SIZE = 50
# The task page renders this many of the newest attempts; ``?attempts=all``
# renders the whole timeline. A task retried hundreds of times then costs
# what one retried a few times does. 10, not 20: even at about 0.5 ms per
# attempt shown (after making each one cheaper), 20 put the 300-attempt page
# at 1.5 x a 3-attempt one (issue 7, P4). The link to the whole timeline
# stays on the page.
DETAIL_ATTEMPTS = 10
# A polling fragment sends the version it shows; an unchanged version gets an
# empty 204, which htmx does not swap: selection, focus and scroll stay put.
SINCE_HEADER = "X-MC-Since"


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (the typing its docs give)."""

    htmx: HtmxDetails


def role_required(role: str) -> Callable:
    """Every page needs a login and a role; the server refuses, not just the
    template that hides a button."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                if request.htmx:
                    # A fragment must not swap the login page into itself.
                    page = request.htmx.current_url_abs_path or request.get_full_path()
                    login = resolve_url(settings.LOGIN_URL)
                    return HttpResponseClientRedirect(f"{login}?next={page}")
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, role):
                return _forbidden(request, role)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _forbidden(request: HtmxHttpRequest, role: str) -> HttpResponse:
    context = {"role": role, "detail": f"This needs the {role} role, which your account does not have."}
    template = "planning/forbidden.html#message" if request.htmx else "planning/forbidden.html"
    return render(request, template, context, status=403)


def _render(request: HtmxHttpRequest, template: str, fragments: dict[str, str], context: dict, status: int = 200):
    fragment = None
    if request.htmx and not request.htmx.history_restore_request:
        fragment = fragments.get(request.htmx.target or "")
    name = f"{template}#{fragment}" if fragment else template
    response = render(request, name, context, status=status)
    # One URL answers with a page or a fragment: caches must tell them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def _unchanged(request: HtmxHttpRequest, version: int) -> bool:
    return bool(request.htmx) and request.headers.get(SINCE_HEADER) == str(version)


class CountedPaginator(Paginator):
    """A paginator told its total, which the board already has from its
    counts: Django's own would run a ``COUNT(*)`` over every matching task."""

    def __init__(self, object_list, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = count

    @cached_property
    def count(self) -> int:
        return self._known_count


def _base_context(request: HtmxHttpRequest, section: str) -> dict:
    return {
        "section": section,
        "can_operate": has_role(request.user, OPERATOR),
        "can_admin": has_role(request.user, ADMIN),
        "poll_seconds": 5,
    }


# --- Board -----------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def board(request: HtmxHttpRequest) -> HttpResponse:
    version = sel.board_version()
    if _unchanged(request, version):
        return HttpResponse(status=204)
    form = BoardFilterForm(request.GET, options=sel.board_filter_options())
    filters = form.filters()
    counts = sel.board_counts(filters)
    paginator = CountedPaginator(sel.board_tasks(filters), BOARD_PAGE_SIZE, count=sel.board_total(filters, counts))
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = sel.decorate_board_rows(list(page.object_list))
    # The failed and blocked tasks on this page, for "rerun these together";
    # the form lists exactly them, so what is rerun is what was shown.
    rerunnable = [t for t in page.object_list if t.status in RERUNNABLE]
    context = {
        **_base_context(request, "board"),
        "form": form,
        "filters": filters,
        "page": page,
        "tasks": page.object_list,
        "counts": counts,
        "status_counts": [(status, label, counts[status]) for status, label in PlanningTask.Status.choices],
        "version": version,
        "rerunnable": rerunnable,
        "rerun_key": new_idempotency_key(),
        "rerun_needs_override": any(t.attempt_count >= t.max_attempts for t in rerunnable),
    }
    return _render(request, "planning/board.html", {"board": "board", "board-live": "live"}, context)


# --- Task detail and its actions ---------------------------------------------------


def _attempts_limit(request: HtmxHttpRequest) -> int | None:
    return None if request.GET.get("attempts") == "all" else DETAIL_ATTEMPTS


def _detail_or_404(request: HtmxHttpRequest, slug: str) -> sel.TaskDetail:
    detail = sel.task_detail(slug, attempts_limit=_attempts_limit(request))
    if detail is None:
        raise Http404(f"No task named {slug!r}.")
    return detail


def _action_forms(detail: sel.TaskDetail, bound: dict | None = None) -> dict:
    """The forms that apply to the task in its status now, each with the
    preview of what it would do: the action's own decision. ``bound``
    holds a submitted form to show again with its errors."""
    bound = bound or {}
    task = detail.task
    S = PlanningTask.Status
    agents = sel.active_agents()
    forms: dict = {}
    previews = retry_services.task_page_previews(task)
    rerun = previews.rerun.outcome
    if task.status == S.DRAFT:
        forms["launch_form"] = bound.get("launch") or LaunchForm(prefix="launch")
    elif isinstance(rerun, Refusal) and rerun.code == "not_launched":
        # Cancelled before its launch: rerun and repair refuse it too (the
        # rerun decision's answer, shown instead of forms that would fail).
        forms["not_launched"] = rerun
    else:
        if task.status != S.SUCCEEDED:
            forms["rerun_form"] = bound.get("rerun") or _rerun_form(task, agents, previews.rerun.keep)
            forms["rerun_preview"] = previews.rerun
        forms["repair_form"] = bound.get("repair") or RepairForm(
            prefix="repair",
            agents=agents,
            keep=previews.repair_keep,
            preview_url=reverse("task_repair_preview", args=[task.slug]),
        )
    cancel = previews.cancel
    if isinstance(cancel, CancelDecision) and not cancel.noop:
        forms["cancel_form"] = bound.get("cancel") or CancelForm(prefix="cancel")
        forms["cancel_decision"] = cancel
    return forms


def _rerun_form(task: PlanningTask, agents: list, keep, data=None) -> RerunForm:
    return RerunForm(
        data,
        prefix="rerun",
        agents=agents,
        keep=keep,
        preview_url=reverse("task_rerun_preview", args=[task.slug]),
        offer_override=task.attempt_count >= task.max_attempts,
        offer_supersede=task.status in PlanningTask.ACTIVE_STATUSES,
    )


def _detail_context(request: HtmxHttpRequest, detail: sel.TaskDetail, *, bound: dict | None = None) -> dict:
    tab = request.GET.get("tab", "attempts")
    if tab not in ("attempts", "ledger"):
        tab = "attempts"
    context = {
        **_base_context(request, "board"),
        "d": detail,
        "task": detail.task,
        "tab": tab,
        "version": detail.version,
        "all_attempts": _attempts_limit(request) is None,
    }
    if tab == "ledger":
        context["events"] = sel.task_events(detail.task)
    if context["can_operate"]:
        context.update(_action_forms(detail, bound))
    return context


@require_GET
@role_required(VIEWER)
def task_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    if request.htmx and request.headers.get(SINCE_HEADER):
        version = sel.task_version(slug)
        if version is None:
            raise Http404(f"No task named {slug!r}.")
        if _unchanged(request, version):
            return HttpResponse(status=204)
    detail = _detail_or_404(request, slug)
    return _render(
        request,
        "planning/task_detail.html",
        {"task-live": "live", "task-actions": "actions"},
        _detail_context(request, detail),
    )


def _action_done(request: HtmxHttpRequest, slug: str, message: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, message)
        return redirect("task_detail", slug=slug)
    detail = _detail_or_404(request, slug)
    context = {**_detail_context(request, detail), "action_message": message, "action_ok": True}
    response = render(request, "planning/task_detail.html#actions", context)
    # The timeline and summary listen for this and reload themselves.
    response["HX-Trigger"] = "task-changed"
    return response


def _action_refused(request: HtmxHttpRequest, slug: str, name: str, form, error: ServiceError | None) -> HttpResponse:
    """Show the refusal where the form is: field errors next to their
    fields (400), the service's sentence for a refused transition (409)."""
    status = 400
    message = None
    code = "invalid"
    if error is not None:
        status, code = status_for(error), error.code
        for field, msgs in (error.errors or {}).items():
            for msg in msgs:
                form.add_error(field if field in form.fields else None, msg)
        if not error.errors:
            message = error.detail
    detail = _detail_or_404(request, slug)
    context = _detail_context(request, detail, bound={name: form})
    # The refusal goes next to the form that was sent; when the task has
    # moved on and that form no longer applies, at the top of the actions.
    where = name if f"{name}_form" in context else "top"
    context.update({"action_message": message, "action_code": code, "action_form": where, "action_ok": False})
    template = "planning/task_detail.html#actions" if request.htmx else "planning/task_detail.html"
    return render(request, template, context, status=status)


def _attempt_message(verb: str, result: retry_services.AttemptResult) -> str:
    attempt = result.attempt
    who = attempt.requested_assignee.name if attempt.requested_assignee is not None else "nobody"
    if result.replayed:
        return (
            f"Already done: this form was submitted before and made attempt #{attempt.number}; nothing new was created."
        )
    return f"{verb} attempt #{attempt.number}, frozen assignee {who}."


@require_POST
@role_required(OPERATOR)
def task_rerun(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    detail = _detail_or_404(request, slug)
    form = _rerun_form(detail.task, sel.active_agents(), None, request.POST)
    if not form.is_valid():
        return _action_refused(request, slug, "rerun", form, None)
    data = form.cleaned_data
    try:
        result = retry_services.task_rerun(
            slug=slug,
            actor=actor_name(request.user),
            reason=data["reason"],
            assignee=form.explicit_assignee(),
            override_budget=bool(data.get("override_budget")),
            supersede_active=bool(data.get("supersede_active")),
            idempotency_key=data["idempotency_key"],
        )
    except ServiceError as exc:
        return _action_refused(request, slug, "rerun", form, exc)
    return _action_done(request, slug, _attempt_message("Rerun requested:", result))


@require_POST
@role_required(OPERATOR)
def task_repair(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    _detail_or_404(request, slug)
    form = RepairForm(request.POST, prefix="repair", agents=sel.active_agents(), keep=None)
    if not form.is_valid():
        return _action_refused(request, slug, "repair", form, None)
    try:
        result = retry_services.task_repair(
            slug=slug,
            actor=actor_name(request.user),
            reason=form.cleaned_data["reason"],
            assignee=form.explicit_assignee(),
            idempotency_key=form.cleaned_data["idempotency_key"],
        )
    except ServiceError as exc:
        return _action_refused(request, slug, "repair", form, exc)
    return _action_done(request, slug, _attempt_message("Repair started:", result))


@require_GET
@role_required(OPERATOR)
def task_rerun_preview(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The rerun form's preview for the options it has now (htmx, on change)."""
    return _preview_fragment(request, slug, "rerun")


@require_GET
@role_required(OPERATOR)
def task_repair_preview(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    return _preview_fragment(request, slug, "repair")


def _preview_fragment(request: HtmxHttpRequest, slug: str, name: str) -> HttpResponse:
    options = PreviewOptionsForm(request.GET, prefix=name, agents=sel.active_agents())
    options.is_valid()
    chosen = options.cleaned_data.get("assignee")
    if name == "rerun":
        (preview,) = retry_services.task_rerun_previews(
            slugs=[slug],
            assignee=chosen,
            override_budget=bool(options.cleaned_data.get("override_budget")),
            supersede_active=bool(options.cleaned_data.get("supersede_active")),
        )
    else:
        (preview,) = retry_services.task_repair_previews(slugs=[slug], assignee=chosen)
    if preview.task is None:
        raise Http404(f"No task named {slug!r}.")
    context = {"preview": preview, "name": name, "task": preview.task, "options_errors": options.errors}
    return render(request, "planning/task_detail.html#action-preview", context)


@require_POST
@role_required(OPERATOR)
def task_cancel(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    _detail_or_404(request, slug)
    form = CancelForm(request.POST, prefix="cancel")
    if not form.is_valid():
        return _action_refused(request, slug, "cancel", form, None)
    try:
        retry_services.task_cancel(slug=slug, actor=actor_name(request.user), reason=form.cleaned_data["reason"])
    except ServiceError as exc:
        return _action_refused(request, slug, "cancel", form, exc)
    return _action_done(request, slug, f"Task {slug} is cancelled.")


@require_POST
@role_required(OPERATOR)
def task_launch(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    _detail_or_404(request, slug)
    form = LaunchForm(request.POST, prefix="launch")
    if not form.is_valid():
        return _action_refused(request, slug, "launch", form, None)
    try:
        result = retry_services.task_launch(
            slug=slug, actor=actor_name(request.user), idempotency_key=form.cleaned_data["idempotency_key"]
        )
    except ServiceError as exc:
        return _action_refused(request, slug, "launch", form, exc)
    return _action_done(request, slug, _attempt_message("Launched:", result))


# --- Plans -----------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def plans(request: HtmxHttpRequest) -> HttpResponse:
    page = Paginator(sel.plans_queryset(), PLANS_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = sel.plan_list_with_projection(page.object_list)
    for plan in page.object_list:
        # One key per rendered card: submitting it twice reruns its tasks once.
        plan.rerun_key = new_idempotency_key()
        plan.rerun_needs_override = any(f["attempt_number"] >= f["max_attempts"] for f in plan.failed_tasks)
    context = {
        **_base_context(request, "plans"),
        "page": page,
        "plans": page.object_list,
        "statuses": PlanningTask.Status.choices,
    }
    return _render(request, "planning/plans.html", {"plans-live": "live"}, context)


@require_POST
@role_required(OPERATOR)
def plan_resume(request: HtmxHttpRequest, plan_id: uuid.UUID) -> HttpResponse:
    try:
        plan = planning_services.plan_resume(plan_id=plan_id, actor=actor_name(request.user))
    except ServiceError as exc:
        if exc.code == "not_found":
            raise Http404(exc.detail) from exc
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Plan {plan.name} resumed; it is {plan.status} now.")
    return redirect(reverse("plans") + f"#plan-{plan_id}")


@require_POST
@role_required(OPERATOR)
def plan_rerun(request: HtmxHttpRequest, plan_id: uuid.UUID) -> HttpResponse:
    """Rerun the failed and blocked tasks a plan's card listed, together
    (all or nothing, see ``task_rerun_many``)."""
    _rerun_together(request, PlanRerunForm(request.POST), plan_id=plan_id)
    return redirect(reverse("plans") + f"#plan-{plan_id}")


@require_POST
@role_required(OPERATOR)
def board_rerun(request: HtmxHttpRequest) -> HttpResponse:
    """Rerun the failed and blocked tasks a board page listed, together, and
    go back to that page with its filters."""
    form = BoardRerunForm(request.POST)
    _rerun_together(request, form)
    back = request.POST.get("next", "")
    # Only a path of this site: ``next`` comes from the form, so it can be forged.
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("board")
    return redirect(back)


def _rerun_together(request: HtmxHttpRequest, form: PlanRerunForm, *, plan_id: uuid.UUID | None = None) -> None:
    """One ``task_rerun_many`` call for a submitted list of tasks; the outcome
    becomes one message."""
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items())
        messages.error(request, f"Nothing was rerun: {problems}")
        return
    data = form.cleaned_data
    try:
        results = retry_services.task_rerun_many(
            slugs=data["tasks"],
            actor=actor_name(request.user),
            reason=data["reason"],
            override_budget=data["override_budget"],
            idempotency_key=data["idempotency_key"],
            plan_id=plan_id,
        )
    except ServiceError as exc:
        reasons = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in (exc.errors or {}).items())
        messages.error(request, f"{exc.detail} {reasons}".strip())
        return
    started = ", ".join(f"{r.attempt.task.slug} #{r.attempt.number}" for r in results)
    verb = "already rerun by this form" if results[0].replayed else "rerun"
    messages.success(request, f"{len(results)} task(s) {verb}: {started}.")


# --- Native runs -----------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def native_runs(request: HtmxHttpRequest) -> HttpResponse:
    form = NativeRunFilterForm(request.GET, executors=sel.native_run_executors())
    page = Paginator(sel.native_runs_for_triage(**form.values()), RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = sel.attach_claimed_attempts(list(page.object_list), attempts_window=DETAIL_ATTEMPTS)
    context = {**_base_context(request, "runs"), "form": form, "page": page, "runs": page.object_list}
    return _render(request, "planning/native_runs.html", {"runs-live": "live"}, context)


@require_GET
@role_required(ADMIN)
def deliveries(request: HtmxHttpRequest) -> HttpResponse:
    """Alert webhook deliveries and their status (the admin role's, like
    the subscriptions: a receiver URL may carry a token)."""
    form = DeliveryFilterForm(request.GET)
    rows = alert_selectors.deliveries_for_dashboard(state=form.state_value())
    page = Paginator(rows, RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        **_base_context(request, "deliveries"),
        "form": form,
        "page": page,
        "deliveries": page.object_list,
        "max_tries": alert_selectors.max_tries(),
    }
    return _render(request, "planning/deliveries.html", {"deliveries-live": "live"}, context)
