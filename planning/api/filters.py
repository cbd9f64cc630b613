"""Query filters of the planning lists (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from missioncontrol.api.filters import StrictFilterSet
from planning.models import Plan, PlanningTask


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
