"""Query filters of the native run list (django-filter)."""

from __future__ import annotations

import django_filters

from missioncontrol.api.filters import StrictFilterSet

from retries.models import NativeRun


class NativeRunFilter(StrictFilterSet):
    binding = django_filters.ChoiceFilter(choices=NativeRun.Binding.choices)
    task = django_filters.CharFilter(field_name="task_slug", max_length=200)
    executor = django_filters.CharFilter(field_name="executor", max_length=50)

    class Meta:
        model = NativeRun
        fields = ["binding", "task", "executor"]
