"""Query filters of the API's lists (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from planning.models import Plan, PlanningTask
from retries.models import NativeRun


class StrictFilterSet(django_filters.FilterSet):
    """An empty value for a choice or an id filter is bad input, not "no
    filter": ``?status=`` is refused like ``?status=nonsense``."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, field in self.filters.items():
            if isinstance(field, django_filters.ChoiceFilter | django_filters.UUIDFilter) and self.data.get(name) == "":
                self.form.add_error(name, "Give a value or leave the parameter out.")
                valid = False
        return valid


class TaskFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=PlanningTask.Status.choices)
    project = django_filters.CharFilter(field_name="project__slug", max_length=100)
    procedure = django_filters.CharFilter(field_name="procedure__slug", max_length=100)
    plan = django_filters.UUIDFilter(field_name="plan_id")
    assignee = django_filters.CharFilter(field_name="assignee__name", max_length=100)
    search = django_filters.CharFilter(method="filter_search", max_length=300, label="Slug or title contains")

    class Meta:
        model = PlanningTask
        fields = ["status", "project", "procedure", "plan", "assignee", "search"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(slug__icontains=value) | Q(title__icontains=value))


class PlanFilter(StrictFilterSet):
    project = django_filters.CharFilter(field_name="project__slug", max_length=100)
    status = django_filters.ChoiceFilter(choices=Plan.Status.choices)

    class Meta:
        model = Plan
        fields = ["project", "status"]


class NativeRunFilter(StrictFilterSet):
    binding = django_filters.ChoiceFilter(choices=NativeRun.Binding.choices)
    task = django_filters.CharFilter(field_name="task_slug", max_length=200)
    executor = django_filters.CharFilter(field_name="executor", max_length=50)

    class Meta:
        model = NativeRun
        fields = ["binding", "task", "executor"]
