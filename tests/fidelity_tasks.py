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


@app.task(name="fidelity.kwargs_to_args", bind=True, max_retries=1)
def kwargs_to_args(self: Any, foo: int, bar: int, label: str | None = None) -> dict[str, Any]:
    """Called with keywords, retried with new positional arguments (Celery's own case)."""
    if not self.request.retries:
        raise self.retry(args=(foo + 1, bar + 1), countdown=0)
    return {"foo": foo, "bar": bar, "label": label, "retries": self.request.retries}


@app.task(name="fidelity.args_to_kwargs", bind=True, max_retries=1)
def args_to_kwargs(self: Any, foo: int, bar: int) -> dict[str, Any]:
    """Called with positional arguments, retried with a new keyword one."""
    if not self.request.retries:
        raise self.retry(kwargs={"foo": foo + 1}, countdown=0)
    return {"foo": foo, "bar": bar, "retries": self.request.retries}


@app.task(name="fidelity.countdown_args", bind=True, max_retries=3)
def countdown_args(self: Any, n: int) -> int:
    """Retries with n - 1 until n is 0; returns how many retries it took."""
    if n > 0:
        raise self.retry(args=[n - 1], countdown=0)
    return int(self.request.retries)


@app.task(name="fidelity.bad_retry", bind=True)
def bad_retry(self: Any) -> str:
    """Asks for a retry with arguments JSON cannot carry."""
    raise self.retry(args=[object()], countdown=0)


@app.task(name="fidelity.lineage", bind=True)
def lineage(self: Any, depth: int) -> list[Any]:
    """Its own id, root_id and parent_id, then (while depth > 0) those of a child it sends
    and waits for (from inside this task: Celery's own lineage)."""
    here = [self.request.id, self.request.root_id, self.request.parent_id]
    if depth == 0:
        return [here]
    child = lineage.delay(depth - 1)
    return [here, *child.get(timeout=60, disable_sync_subtasks=False)]


@app.task(name="fidelity.reject")
def reject() -> None:
    """Rejects its message for good (Celery's ``Reject(requeue=False)``)."""
    from celery.exceptions import Reject

    raise Reject("rejected", requeue=False)
