"""The bytes a delivery sends, in the subscription's format. Both are
rendered from the delivery's stored body, so every try sends the same."""

from __future__ import annotations

import json
from typing import Any

SEVERITY = {
    "task.blocked": "critical",
    "task.inconsistent": "critical",
    "attempt.stalled": "warning",
    "plan.paused": "warning",
    "native_run.refused_superseded": "info",
}


def summary(body: dict[str, Any]) -> str:
    event, task, data = body["event"], body.get("task"), body.get("data") or {}
    if event == "task.blocked":
        return f"Task {task} is blocked: {data.get('reason', 'no reason given')}."
    if event == "attempt.stalled":
        return f"An attempt of task {task} stalled (no heartbeat within the stall timeout)."
    if event == "task.inconsistent":
        return f"Task {task} disagrees with the ledger and waits for a repair."
    if event == "plan.paused":
        return f"Plan {data.get('plan')} paused after a failure (on_error: pause)."
    if event == "native_run.refused_superseded":
        return f"Native run {data.get('native_run_id')} of task {task} was refused: {data.get('reason')}."
    return event


def alertmanager(body: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager webhook payload (version 4) with one firing alert."""
    labels = {
        "alertname": body["event"],
        "severity": SEVERITY.get(body["event"], "warning"),
        **{k: str(body[k]) for k in ("project", "task", "attempt") if body.get(k)},
    }
    annotations = {
        "summary": summary(body),
        "delivery_id": body["id"],
        "data": json.dumps(body.get("data") or {}, sort_keys=True),
    }
    return {
        "version": "4",
        "status": "firing",
        "receiver": "missioncontrol",
        "groupKey": f"missioncontrol:{body['id']}",
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": body["event"]},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": body["at"],
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": body["id"].replace("-", "")[:16],
            }
        ],
    }


def render(fmt: str, body: dict[str, Any]) -> tuple[bytes, str]:
    payload = alertmanager(body) if fmt == "alertmanager" else body
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode(), "application/json"
