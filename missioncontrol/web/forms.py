"""Forms of the operator dashboard. They parse and validate input only; the
services decide whether a transition is allowed."""

from __future__ import annotations

import uuid

from django import forms

from missioncontrol.alerts.models import WebhookDelivery
from planning.models import Agent, PlanningTask
from retries.decisions import FrozenAssignee
from retries.models import NativeRun
from retries.selectors import BoardFilters, FilterOptions
from retries.services import REASON_MAX_LENGTH

REASON_ERRORS = {"required": "Give a reason: it is kept in the ledger."}


def _blank(label: str) -> list[tuple[str, str]]:
    return [("", label)]


def _choices(form: forms.Form, name: str) -> forms.ChoiceField:
    """A choice field of ``form``, whose choices are set per request."""
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{name} is not a choice field")
    return field


class BoardFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    project = forms.ChoiceField(required=False)
    procedure = forms.ChoiceField(required=False)
    plan = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=_blank("any status") + list(PlanningTask.Status.choices))
    assignee = forms.ChoiceField(required=False)
    attention = forms.BooleanField(required=False, label="Needs attention")

    def __init__(self, *args, options: FilterOptions, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "project").choices = _blank("any project") + options.projects
        _choices(self, "procedure").choices = _blank("any procedure") + options.procedures
        _choices(self, "plan").choices = _blank("any plan") + options.plans
        _choices(self, "assignee").choices = _blank("anyone") + options.agents

    def filters(self) -> BoardFilters:
        """The valid part of the query: a bad value is reported next to its
        field and ignored, never guessed."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        return BoardFilters(
            project=data.get("project") or "",
            procedure=data.get("procedure") or "",
            plan=data.get("plan") or "",
            status=data.get("status") or "",
            assignee=data.get("assignee") or "",
            attention=bool(data.get("attention")),
            q=(data.get("q") or "").strip(),
        )


class NativeRunFilterForm(forms.Form):
    binding = forms.ChoiceField(
        required=False,
        choices=[
            ("", "unbound and rejected"),
            (NativeRun.Binding.UNBOUND, "unbound"),
            (NativeRun.Binding.REJECTED, "rejected"),
        ],
    )
    executor = forms.ChoiceField(required=False)

    def __init__(self, *args, executors: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "executor").choices = _blank("any executor") + [(e, e) for e in executors]

    def values(self) -> dict[str, str]:
        self.is_valid()
        return {name: self.cleaned_data.get(name) or "" for name in ("binding", "executor") if name not in self.errors}


class DeliveryFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "any state"), *WebhookDelivery.State.choices])

    def state_value(self) -> str:
        self.is_valid()
        return "" if "state" in self.errors else self.cleaned_data.get("state") or ""


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


class _AttemptForm(forms.Form):
    """A form that requests a fresh attempt. Its idempotency key is made when
    the form is rendered, so a double-click or a resubmission of the same
    rendered form makes one attempt.

    The assignee's default is no explicit choice: its label names the agent
    rule 3 freezes then (``keep``, from the action's own preview), and
    submitting the form unchanged freezes exactly that agent, active or not.
    Choosing an agent makes it the explicit choice, so it must be active."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=REASON_MAX_LENGTH, error_messages=REASON_ERRORS
    )
    assignee = forms.ChoiceField(required=False, label="Assignee")
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)
    # The fields whose change refreshes the preview beside the button.
    PREVIEWED: tuple[str, ...] = ("assignee",)

    def __init__(
        self, *args, agents: list[Agent], keep: FrozenAssignee | None, preview_url: str = "", **kwargs
    ) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)
        kept = f"{keep.name} ({keep.source})" if keep is not None and keep.name else "nobody"
        _choices(self, "assignee").choices = [("", f"Keep the rule-3 assignee: {kept}")] + [
            (a.name, a.name) for a in agents
        ]
        self.keep = keep
        if preview_url:
            for name in self.PREVIEWED:
                if name in self.fields:
                    self.fields[name].widget.attrs.update(
                        {
                            "hx-get": preview_url,
                            "hx-trigger": "change",
                            "hx-target": f"#{self.prefix}-preview",
                            "hx-swap": "outerHTML",
                            "hx-include": "closest form",
                        }
                    )

    def explicit_assignee(self) -> str | None:
        return self.cleaned_data.get("assignee") or None


class RerunForm(_AttemptForm):
    override_budget = forms.BooleanField(required=False, label="Override the retry budget")
    supersede_active = forms.BooleanField(required=False, label="Supersede the active attempt")
    PREVIEWED = ("assignee", "override_budget", "supersede_active")

    def __init__(self, *args, offer_override: bool, offer_supersede: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only the options that apply to the task now are offered (shown); a
        # stale page that lacks one gets the service's refusal, shown in
        # place. What was submitted is read whatever the task's state now:
        # a replay under the same Idempotency-Key must be the same request
        # after the first one moved the task (the API reads its body as sent).
        self.offer_override = offer_override
        self.offer_supersede = offer_supersede


class RepairForm(_AttemptForm):
    pass


class PreviewOptionsForm(forms.Form):
    """The options a rerun or repair form has now, sent by htmx to refresh
    its preview; the reason is not needed to preview."""

    assignee = forms.ChoiceField(required=False)
    override_budget = forms.BooleanField(required=False)
    supersede_active = forms.BooleanField(required=False)

    def __init__(self, *args, agents: list[Agent], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.by_name = {a.name: a for a in agents}
        _choices(self, "assignee").choices = [("", "")] + [(name, name) for name in self.by_name]

    def clean_assignee(self) -> Agent | None:
        return self.by_name.get(self.cleaned_data.get("assignee") or "")


class SlugListField(forms.Field):
    """The task slugs a page listed, sent back as repeated hidden inputs.
    How many and each once are ``task_rerun_many``'s rules, checked there."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        if not value:
            return []
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise forms.ValidationError("Send a list of task slugs.")
        return list(value)


class PlanRerunForm(forms.Form):
    """Rerun together the failed and blocked tasks a plan's card listed:
    exactly those, so what the operator saw is what is rerun. The key is made
    when the card is rendered, so a double submit reruns them once."""

    tasks = SlugListField(error_messages={"required": "No task to rerun."})
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, error_messages=REASON_ERRORS)
    override_budget = forms.BooleanField(required=False, label="Go past the attempt budget (blocked tasks need it)")
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)


class BoardRerunForm(PlanRerunForm):
    """The same for the failed and blocked tasks a board page listed, under
    whatever filters it had; ``next`` brings the operator back to them."""

    next = forms.CharField(required=False, max_length=2000)


class CancelForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=REASON_MAX_LENGTH, error_messages=REASON_ERRORS
    )


class LaunchForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)
