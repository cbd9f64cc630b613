"""Alert webhooks: subscriptions (created and changed only here, by the API
and the admin alike), the deliveries an alert makes, and one delivery try.

A delivery is tried until a 2xx answer or ``WEBHOOK_MAX_TRIES`` tries, with
exponential backoff (``WEBHOOK_BACKOFF_SECONDS`` doubled per try). A try
first claims the row (locks it and pushes ``next_try_at`` past the request
timeout), then sends outside any transaction, then records the outcome: two
workers never send the same delivery at once, and a worker that dies
mid-send leaves it due again for the sweep. At least once: a receiver
dedupes by the delivery id, which every try repeats."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from requests.adapters import HTTPAdapter

from missioncontrol.errors import ServiceError, invalid
from missioncontrol.observability.metrics import WEBHOOK_TRIES
from planning.models import Plan, PlanningTask, Project

from .events import ALERT_EVENTS
from .models import WebhookDelivery, WebhookSubscription
from .payloads import render

SECRET_MIN_LENGTH = 16
DELIVERY_NAMESPACE = uuid.UUID("6d636b2d-7765-6268-6f6f-6b2d64656c76")
UNSET: Any = object()


# --- URL check: one function, at subscription and at every send -------------------------


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False))


def _url_error(message: str) -> ServiceError:
    return invalid({"url": [message]})


def _refused_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_webhook_url(url: str) -> list[str]:
    """The addresses ``url`` may be sent to, or a 400 naming ``url``. It
    must be https and resolve only to global addresses; with
    ``WEBHOOKS_ALLOW_PRIVATE`` (on-premises receivers, tests) http and
    loopback, private and link-local addresses are admitted too."""
    allow_private = _allow_private()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _url_error(f"Not a valid URL: {exc}.") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise _url_error("Use an https:// URL." if not allow_private else "Use an https:// or http:// URL.")
    host = parts.hostname
    if not host:
        raise _url_error("The URL names no host.")
    if parts.username or parts.password:
        raise _url_error("Put no credentials in the URL; the signature authenticates the sender.")
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise _url_error(f"The host {host} does not resolve.") from exc
    # An IPv4 or IPv6 sockaddr starts with the address as a string; the
    # (int, bytes) form of other families does not occur for a TCP lookup.
    addresses = list(dict.fromkeys(info[4][0] for info in infos if isinstance(info[4][0], str)))
    if not allow_private:
        for address in addresses:
            if _refused_address(ipaddress.ip_address(address.split("%", 1)[0])):
                raise _url_error(
                    f"The host {host} resolves to {address}, a loopback, private, link-local or otherwise "
                    "non-public address; receivers must be reachable on the internet."
                )
    if not addresses:
        raise _url_error(f"The host {host} does not resolve.")
    return addresses


# --- Subscriptions ------------------------------------------------------------------------


def _check_fields(*, secret: str = UNSET, events: list = UNSET, fmt: str = UNSET) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if secret is not UNSET and (not isinstance(secret, str) or len(secret) < SECRET_MIN_LENGTH):
        errors["secret"] = [f"Give a secret of at least {SECRET_MIN_LENGTH} characters."]
    if events is not UNSET:
        if not isinstance(events, list) or not events:
            errors["events"] = [f"Give a non-empty list of: {', '.join(ALERT_EVENTS)}."]
        elif unknown := [e for e in events if e not in ALERT_EVENTS]:
            errors["events"] = [f"Unknown events {unknown}; use: {', '.join(ALERT_EVENTS)}."]
    if fmt is not UNSET and fmt not in WebhookSubscription.Format.values:
        errors["format"] = [f"Use one of: {', '.join(WebhookSubscription.Format.values)}."]
    return errors


def _project(slug: str | None) -> Project | None:
    if slug is None:
        return None
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise invalid({"project": [f"No project named {slug!r}."]})
    return project


def subscription_create(
    *,
    url: str,
    secret: str,
    events: list[str],
    project: str | None = None,
    active: bool = True,
    format: str = WebhookSubscription.Format.JSON,
    actor: str,
) -> WebhookSubscription:
    errors = _check_fields(secret=secret, events=events, fmt=format)
    if errors:
        raise invalid(errors)
    check_webhook_url(url)
    subscription = WebhookSubscription(
        url=url,
        secret=secret,
        events=list(dict.fromkeys(events)),
        project=_project(project),
        active=active,
        format=format,
        created_by=actor,
    )
    subscription.save(force_insert=True)
    return subscription


def subscription_update(
    *,
    id: uuid.UUID,
    url: str = UNSET,
    secret: str = UNSET,
    events: list[str] = UNSET,
    project: str | None = UNSET,
    active: bool = UNSET,
    format: str = UNSET,
) -> WebhookSubscription:
    errors = _check_fields(secret=secret, events=events, fmt=format)
    if errors:
        raise invalid(errors)
    if url is not UNSET:
        check_webhook_url(url)
    changes: dict[str, Any] = {"url": url, "secret": secret, "active": active, "format": format}
    if events is not UNSET:
        changes["events"] = list(dict.fromkeys(events))
    if project is not UNSET:
        changes["project"] = _project(project)
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().filter(id=id).first()
        if subscription is None:
            raise ServiceError("not_found", "No webhook subscription with this id.")
        fields = [name for name, value in changes.items() if value is not UNSET]
        for name in fields:
            setattr(subscription, name, changes[name])
        if fields:
            subscription.save(update_fields=fields)
    return subscription


def subscription_delete(*, id: uuid.UUID) -> None:
    """Deletes the subscription and its delivery records."""
    deleted, _ = WebhookSubscription.objects.filter(id=id).delete()
    if not deleted:
        raise ServiceError("not_found", "No webhook subscription with this id.")


# --- From alerts to deliveries ------------------------------------------------------------


def delivery_id(subscription_id: uuid.UUID, alert: dict) -> uuid.UUID:
    """Stable for one alert and one subscription, so a dispatch task run
    twice (at-least-once delivery) makes each delivery once."""
    key = "|".join(str(alert.get(k)) for k in ("event", "type", "at", "task_id", "plan_id", "attempt_id"))
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{subscription_id}|{key}")


def deliveries_create(alerts: list[dict]) -> list[uuid.UUID]:
    """The deliveries these alerts make for the active subscriptions that
    want them (event, and project when the subscription names one). A fixed
    number of queries for any number of alerts. Returns their ids."""
    subscriptions = list(WebhookSubscription.objects.filter(active=True).order_by("created_at", "id"))
    wanted = {a["event"] for a in alerts}
    subscriptions = [s for s in subscriptions if wanted.intersection(s.events)]
    if not subscriptions:
        return []
    task_ids = {a["task_id"] for a in alerts if a.get("task_id") is not None}
    plan_ids = {a["plan_id"] for a in alerts if a.get("plan_id")}
    tasks = {
        row["id"]: row
        for row in PlanningTask.objects.filter(id__in=task_ids).values("id", "slug", "project_id", "project__slug")
    }
    plans = {
        str(row["id"]): row for row in Plan.objects.filter(id__in=plan_ids).values("id", "project_id", "project__slug")
    }
    now = timezone.now()
    rows = []
    for alert in alerts:
        task = tasks.get(alert["task_id"]) if alert.get("task_id") is not None else None
        owner = task or plans.get(alert.get("plan_id") or "")
        project_id = owner["project_id"] if owner else None
        for subscription in subscriptions:
            if alert["event"] not in subscription.events:
                continue
            if subscription.project_id is not None and subscription.project_id != project_id:
                continue
            new_id = delivery_id(subscription.id, alert)
            data = {"type": alert["type"], "actor": alert.get("actor"), **(alert.get("data") or {})}
            if alert.get("plan_id"):
                data["plan"] = alert["plan_id"]
            body = {
                "id": str(new_id),
                "event": alert["event"],
                "at": alert["at"],
                "task": task["slug"] if task else None,
                "attempt": alert.get("attempt_id"),
                "project": owner["project__slug"] if owner else None,
                "data": data,
            }
            rows.append(
                WebhookDelivery(
                    id=new_id,
                    subscription_id=subscription.id,
                    event=alert["event"],
                    body=body,
                    next_try_at=now,
                    created_at=now,
                )
            )
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return [row.id for row in rows]


# --- One try -----------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """``X-MC-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_seconds(tries: int) -> float:
    """The wait after the ``tries``-th failed try: base, 2 x base, 4 x base..."""
    base = float(settings.WEBHOOK_BACKOFF_SECONDS)
    return min(base * 2 ** max(tries - 1, 0), float(getattr(settings, "WEBHOOK_BACKOFF_MAX_SECONDS", 3600)))


@dataclass
class TryOutcome:
    delivered: bool
    status: int | None
    error: str
    retry_in: float | None  # seconds until the next try; None when done


class _PinnedHost(HTTPAdapter):
    """Connects to the address that was checked, while TLS still verifies
    (and SNI still names) the URL's host: a DNS answer that changes between
    the check and the connection (rebinding) cannot redirect the request."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs.update(server_hostname=self.hostname, assert_hostname=self.hostname)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def _post(url: str, address: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{address}]" if ":" in address else address
    target = urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: it would bypass the address check
        session.mount("https://", _PinnedHost(parts.hostname or ""))
        headers = {**headers, "Host": parts.netloc}
        return session.post(
            target, data=body, headers=headers, timeout=float(settings.WEBHOOK_TIMEOUT_SECONDS), allow_redirects=False
        )


def _claim(delivery_id: uuid.UUID, now: dt.datetime) -> WebhookDelivery | None:
    lease = dt.timedelta(seconds=float(settings.WEBHOOK_TIMEOUT_SECONDS) * 2 + 30)
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription")
            .filter(id=delivery_id, state=WebhookDelivery.State.PENDING, next_try_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        WebhookDelivery.objects.filter(id=delivery_id).update(next_try_at=now + lease)
    return delivery


def delivery_try(delivery_id: uuid.UUID) -> TryOutcome | None:
    """One try of a due delivery; None when it is not due (delivered, given
    up, not yet time, or another worker is trying it)."""
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    subscription = delivery.subscription
    if not subscription.active:
        return _record(delivery, status=None, error="The subscription is not active.", final=True)
    status: int | None = None
    body, content_type = render(subscription.format, delivery.body)
    headers = {
        "Content-Type": content_type,
        "User-Agent": "MissionControl-Webhooks/1",
        "X-MC-Delivery": str(delivery.id),
        "X-MC-Event": delivery.event,
        "X-MC-Signature": sign(subscription.secret, body, int(time.time())),
    }
    try:
        address = check_webhook_url(subscription.url)[0]  # again: DNS may have changed since
        response = _post(subscription.url, address, body, headers)
        status = response.status_code
        error = "" if 200 <= status < 300 else _answer_error(response)
    except ServiceError as exc:
        error = "; ".join((exc.errors or {}).get("url", [exc.detail]))
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    return _record(delivery, status=status, error=error, final=False)


def _answer_error(response: requests.Response) -> str:
    if 300 <= response.status_code < 400:
        return f"Answered {response.status_code} (redirect to {response.headers.get('Location', '?')}, not followed)."
    return f"Answered {response.status_code}."


def _record(delivery: WebhookDelivery, *, status: int | None, error: str, final: bool) -> TryOutcome:
    now = timezone.now()
    tries = delivery.tries + 1
    delivered = not error
    fields: dict[str, Any] = {"tries": tries, "last_status": status, "last_error": error}
    retry_in = None
    if delivered:
        fields.update(state=WebhookDelivery.State.DELIVERED, delivered_at=now, next_try_at=None)
    elif final or tries >= int(settings.WEBHOOK_MAX_TRIES):
        fields.update(state=WebhookDelivery.State.FAILED, next_try_at=None)
    else:
        retry_in = backoff_seconds(tries)
        fields["next_try_at"] = now + dt.timedelta(seconds=retry_in)
    WebhookDelivery.objects.filter(id=delivery.id).update(**fields)
    WEBHOOK_TRIES.labels(delivery.event, "delivered" if delivered else "failed").inc()
    return TryOutcome(delivered=delivered, status=status, error=error, retry_in=retry_in)


def deliveries_due(*, grace_seconds: float = 0, limit: int = 500) -> list[uuid.UUID]:
    """Pending deliveries due for ``grace_seconds`` already: the ones whose
    Celery retry was lost (a worker died). Through the partial index."""
    cutoff = timezone.now() - dt.timedelta(seconds=grace_seconds)
    return list(
        WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING, next_try_at__lte=cutoff)
        .order_by("next_try_at")
        .values_list("id", flat=True)[:limit]
    )
