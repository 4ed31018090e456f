"""Celery tasks for the canvas tests (tests/test_celery_canvas.py): run with
``yardmaster worker -A tests.canvas_tasks``."""

from __future__ import annotations

from typing import Any

from celery import group

from workers.app import create_app

app = create_app(main="tests.canvas_tasks")


class CanvasError(Exception):
    """A link's failure."""


@app.task(name="canvas.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="canvas.mul")
def mul(x: int, y: int) -> int:
    return x * y


@app.task(name="canvas.const")
def const(value: Any) -> Any:
    return value


@app.task(name="canvas.collect")
def collect(values: list[Any]) -> list[Any]:
    """A chord's body: its header's results, as received."""
    return values


@app.task(name="canvas.boom")
def boom(x: Any) -> None:
    raise CanvasError(f"boom on {x!r}")


@app.task(name="canvas.replacer", bind=True)
def replacer(self: Any, x: int, kind: str = "task") -> Any:
    """Replaces itself (Celery's ``self.replace``) by ``add(x, x)``, by the chain
    ``add(x, x) | mul(5)``, or by the group ``add(x, x), add(x, 1)``."""
    if kind == "chain":
        return self.replace(add.s(x, x) | mul.s(5))
    if kind == "group":
        return self.replace(group(add.s(x, x), add.s(x, 1)))
    return self.replace(add.s(x, x))


@app.task(name="canvas.on_error")
def on_error(task_id: str) -> list[Any]:
    """An errback, called as Celery calls an old-style one: with the failed task's id.
    Returns that id and what ``AsyncResult`` tells of the failure (its original type)."""
    failed = app.AsyncResult(task_id)
    exc = failed.result
    return [task_id, failed.state, type(exc).__name__, str(exc)]


@app.task(name="canvas.on_error_new_style")
def on_error_new_style(request: Any, exc: Any, traceback: Any) -> None:
    """A new-style errback (request, exc, traceback): refused at the call on yardmaster."""


@app.task(name="canvas.fail_after_retry", bind=True, max_retries=1)
def fail_after_retry(self: Any, x: Any) -> None:
    """Fails every run, asking for one retry first: the errback waits for the last."""
    raise self.retry(exc=CanvasError(f"failed {x!r}"), countdown=0.1)
