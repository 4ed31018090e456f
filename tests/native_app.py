"""An ordinary Celery app module, as a user would write it, for the Celery-native path tests."""

from __future__ import annotations

from workers.app import create_app

app = create_app(main="tests.native_app")


@app.task(name="tests.add")
def add(x: int, y: int) -> int:
    return x + y
