"""Base of the API's query filters (django-filter)."""

from __future__ import annotations

import django_filters


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
