"""Celery tasks for tests/test_celery_fidelity.py: what a run sees of its own request
(message properties, argument reprs), run with ``yardmaster worker -A tests.fidelity_tasks``."""

from __future__ import annotations

from typing import Any

from workers.app import create_app

app = create_app(main="tests.fidelity_tasks")


@app.task(name="fidelity.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="fidelity.seen", bind=True)
def seen(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The message properties and argument reprs of the run's own request."""
    req = self.request
    return {
        "properties": {k: v for k, v in (req.properties or {}).items() if isinstance(v, str)},
        "argsrepr": getattr(req, "argsrepr", None),
        "kwargsrepr": getattr(req, "kwargsrepr", None),
        "args": list(args),
        "kwargs": kwargs,
    }
