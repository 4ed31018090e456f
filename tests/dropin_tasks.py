"""A user's Celery task module, written the Celery way, for the drop-in tests
(tests/test_celery_dropin.py): run with ``yardmaster worker -A tests.dropin_tasks``."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery, shared_task

from workers.app import create_app

app = create_app(main="tests.dropin_tasks")
plain = Celery("plain", set_as_current=False)  # not a yardmaster app: -A refuses it


class DropinError(Exception):
    """A user's own exception type, re-raised by name in the caller."""


@app.task(name="dropin.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="dropin.started")
def started() -> float:
    """When the body started (UNIX seconds)."""
    return time.time()


@app.task(name="dropin.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="dropin.request", bind=True)
def request(self: Any) -> dict[str, Any]:
    """What the run sees of its own request."""
    req = self.request
    return {
        "priority": (req.delivery_info or {}).get("priority"),
        "time_limit": req.time_limit,
        "soft_time_limit": req.soft_time_limit,
        "trace": getattr(req, "x_trace", None),
        "id": req.id,
    }


@app.task(name="dropin.limited", bind=True, priority=7, time_limit=40, soft_time_limit=30)
def limited(self: Any) -> dict[str, Any]:
    """A task whose decorator sets its priority and time limits."""
    return {
        "priority": (self.request.delivery_info or {}).get("priority"),
        "time_limit": self.request.time_limit,
        "soft_time_limit": self.request.soft_time_limit,
    }


@app.task(name="dropin.fail")
def fail(code: int) -> None:
    raise DropinError("bad input", code)


@app.task(name="dropin.fail_builtin")
def fail_builtin() -> None:
    raise KeyError("missing")


@app.task(name="dropin.spawn")
def spawn(x: int) -> str:
    """Sends a task from inside a task; returns the child's id."""
    return str(add.delay(x, x).id)


@shared_task(name="dropin.shared_mul")
def shared_mul(x: int, y: int) -> int:
    return x * y
