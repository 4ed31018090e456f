"""What the dashboard shows of one task and of the workers: pure functions over stored hashes.

A task's view carries its record's fields, its arguments and result redacted
(:func:`scheduler.redaction.redact_value`: secret-named keys hidden, URL
passwords hidden, long values cut), its error with URL passwords hidden, its
progress when the record has one, and its attempts in order: each attempt
that a retry or a requeue ended (kept in the record as ``attempt_<n>``), then
the current one from the record's own timestamps. When the record has
expired, the task's terminal event from the events stream stands in for it.
"""

from __future__ import annotations

import json
from typing import Any

from scheduler.redaction import redact_text, redact_value
from scheduler.store.tasks import StoredTask
from scheduler.store.workers import StoredWorker

MAX_ERROR = 2000
PROGRESS = {
    "done": "progress_done",
    "total": "progress_total",
    "note": "progress_note",
    "at": "progress_at",
}
SHOWN = (
    "name", "state", "priority", "worker", "attempt", "reason", "deadline", "affinity_key",
    "duration_key", "concurrency_key", "workflow", "submitted_at", "dispatched_at",
    "started_at", "finished_at", "runtime", "not_before",
)  # fmt: skip
NUMERIC = {"priority", "attempt", "deadline", "submitted_at", "dispatched_at", "started_at"}
NUMERIC |= {"finished_at", "runtime", "not_before"}


def _number(text: str | None) -> float | None:
    try:
        return None if text is None or text == "" else float(text)
    except ValueError:
        return None


def _json(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def progress(fields: dict[str, str]) -> dict[str, Any] | None:
    """``{"done", "total", "note", "at"}`` from the record's ``progress_*`` fields; None
    when it has none (the task never reported progress)."""
    if not any(f in fields for f in PROGRESS.values()):
        return None
    return {
        "done": _number(fields.get(PROGRESS["done"])),
        "total": _number(fields.get(PROGRESS["total"])),
        "note": redact_text(fields.get(PROGRESS["note"], "")),
        "at": _number(fields.get(PROGRESS["at"])),
    }


def attempts(fields: dict[str, str]) -> list[dict[str, Any]]:
    """Every attempt the record knows of, oldest first."""
    out: list[dict[str, Any]] = []
    for key, text in fields.items():
        number = key.removeprefix("attempt_")
        if key.startswith("attempt_") and number.isdigit():
            kept = _json(text)
            if isinstance(kept, dict):
                out.append(
                    {
                        "attempt": int(number),
                        "worker": kept.get("worker") or None,
                        "dispatched_at": _number(kept.get("dispatched_at")),
                        "started_at": _number(kept.get("started_at")),
                        "ended_at": _number(kept.get("ended_at")),
                        "outcome": kept.get("outcome"),
                        "error": redact_text(kept.get("error") or "", MAX_ERROR) or None,
                    }
                )
    out.sort(key=lambda a: a["attempt"])
    current = int(fields.get("attempt") or 0)
    state = fields.get("state", "pending")
    kept_numbers = {a["attempt"] for a in out}
    if current and current not in kept_numbers and state != "pending":
        ended = state in ("succeeded", "failed", "cancelled", "expired")
        out.append(
            {
                "attempt": current,
                "worker": fields.get("worker") or None,
                "dispatched_at": _number(fields.get("dispatched_at")),
                "started_at": _number(fields.get("started_at")),
                "ended_at": _number(fields.get("finished_at")) if ended else None,
                "outcome": state,
                "error": redact_text(fields.get("error") or "", MAX_ERROR) or None,
            }
        )
    return out


def task_view(stored: StoredTask) -> dict[str, Any]:
    """The explorer's view of one task (see the module docstring)."""
    fields = stored.fields or {k: v for k, v in (stored.event or {}).items() if k != "expected"}
    view: dict[str, Any] = {"id": stored.id, "source": "record" if stored.fields else "event"}
    for name in SHOWN:
        value = fields.get(name)
        if value in (None, ""):
            view[name] = None
        elif name in NUMERIC:
            view[name] = _number(value)
        else:
            view[name] = value
    view["args"] = redact_value(_json(fields.get("args")) or [])
    view["kwargs"] = redact_value(_json(fields.get("kwargs")) or {})
    result = fields.get("result")
    view["result"] = None if result is None else redact_value(_json(result))
    view["error"] = redact_text(fields.get("error") or "", MAX_ERROR) or None
    view["last_error"] = redact_text(fields.get("last_error") or "", MAX_ERROR) or None
    view["progress"] = progress(fields)
    view["attempts"] = attempts(fields)
    return view


def worker_view(worker: StoredWorker, now: float) -> dict[str, Any]:
    """A worker's slots, the tasks it holds, and whatever else its record carries
    (``resources``, ``labels`` and ``queues`` as JSON when present)."""
    f = worker.fields
    slots = int(f.get("slots") or 0)
    view: dict[str, Any] = {
        "name": worker.name,
        "slots": slots,
        "in_flight": len(worker.tasks),
        "free": max(0, slots - len(worker.tasks)),
        "tasks": worker.tasks[:50],
        "host": f.get("host", ""),
        "pid": int(f.get("pid") or 0),
        "heartbeat_age": round(max(0.0, now - float(f.get("heartbeat") or 0.0)), 3),
        "succeeded": int(f.get("succeeded") or 0),
        "failed": int(f.get("failed") or 0),
    }
    for extra in ("resources", "labels", "queues"):
        if extra in f:
            view[extra] = _json(f[extra])
    return view
