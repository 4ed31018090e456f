"""Celery tasks for the canvas tests (tests/test_celery_canvas.py): run with
``yardmaster worker -A tests.canvas_tasks``."""

from __future__ import annotations

from typing import Any

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
def replacer(self: Any) -> Any:
    """Asks to be replaced, which yardmaster refuses (docs/celery.md, "Canvas")."""
    return self.replace(add.s(1, 1))
