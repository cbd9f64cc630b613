"""The last ledger event id: tests compare it before and after a refused request."""

from planning.models import Event


def last_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
