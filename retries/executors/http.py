"""The ``http`` executor: hands the launch to an outside gateway over HTTP.

Gateway contract (base URL ``HTTP_EXECUTOR_URL``):

- ``POST {base}/launches`` with the JSON launch (``attempt_id``, task,
  procedure, phases, ``resume_phase``, params, requested assignee) and the
  header ``Idempotency-Key: <attempt id>``. The gateway must create at most
  one native run per key and stamp the attempt id on it; 2xx accepts. It may
  answer ``{"native_task_id", "native_run_id"}``.
- ``GET {base}/launches/{attempt_id}`` (optional, used by reconciliation):
  ``{"native_task_id", "native_run_id", "status", "phase"?, "message"?}``
  or 404 when it knows nothing.
- ``POST {base}/launches/{attempt_id}/cancel``: best effort.

The gateway reports progress back through the REST API with its own token.
Because every launch carries the same key, retrying a POST whose answer was
lost is safe; urllib3's ``Retry`` does it with exponential backoff.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .base import Executor, LaunchError, LaunchRequest

log = logging.getLogger(__name__)

NAME = "http"
RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)


def _session() -> requests.Session:
    retry = Retry(
        total=int(getattr(settings, "HTTP_EXECUTOR_RETRIES", 4)),
        backoff_factor=float(getattr(settings, "HTTP_EXECUTOR_BACKOFF", 0.5)),
        status_forcelist=RETRY_STATUSES,
        # POST included: the Idempotency-Key makes a repeated launch harmless.
        allowed_methods=None,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "mission-control/1"
    token = getattr(settings, "HTTP_EXECUTOR_TOKEN", "")
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def _base() -> str:
    base = getattr(settings, "HTTP_EXECUTOR_URL", "")
    if not base:
        raise LaunchError("HTTP_EXECUTOR_URL is not configured: the http executor has no gateway to call.")
    return base.rstrip("/")


def _timeout() -> float:
    return float(getattr(settings, "HTTP_EXECUTOR_TIMEOUT", 5))


def launch_payload(request: LaunchRequest) -> dict[str, Any]:
    return {
        "attempt_id": str(request.attempt_id),
        "attempt_number": request.attempt_number,
        "task": request.task,
        "procedure": request.procedure,
        "phases": list(request.phases),
        "resume_phase": request.resume_phase,
        "params": request.params,
        "requested_assignee": request.requested_assignee,
    }


class HttpExecutor(Executor):
    name = NAME
    pollable = True

    def launch(self, request: LaunchRequest) -> tuple[str, str] | None:
        url = f"{_base()}/launches"
        try:
            with _session() as session:
                response = session.post(
                    url,
                    json=launch_payload(request),
                    headers={"Idempotency-Key": str(request.attempt_id)},
                    timeout=_timeout(),
                )
        except requests.RequestException as exc:
            raise LaunchError(f"The gateway at {url} did not take the launch: {exc}") from exc
        if not response.ok:
            raise LaunchError(
                f"The gateway at {url} refused the launch: HTTP {response.status_code} {response.text[:200]}"
            )
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict) and body.get("native_task_id") and body.get("native_run_id"):
            return str(body["native_task_id"]), str(body["native_run_id"])
        return None

    def poll(self, request: LaunchRequest) -> dict[str, Any] | None:
        try:
            url = f"{_base()}/launches/{request.attempt_id}"
            with _session() as session:
                response = session.get(url, timeout=_timeout())
        except (LaunchError, requests.RequestException) as exc:
            log.warning("http executor: poll of attempt %s failed: %s", request.attempt_id, exc)
            return None
        if response.status_code == 404 or not response.ok:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or not body.get("native_run_id") or not body.get("status"):
            return None
        return body

    def cancel(self, attempt_id: uuid.UUID) -> None:
        try:
            url = f"{_base()}/launches/{attempt_id}/cancel"
            with _session() as session:
                session.post(url, json={"attempt_id": str(attempt_id)}, timeout=_timeout())
        except (LaunchError, requests.RequestException) as exc:
            log.warning("http executor: cancel of %s not delivered: %s", attempt_id, exc)
