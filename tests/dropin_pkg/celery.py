"""The package's Celery app, found by ``-A tests.dropin_pkg`` as ``celery -A`` finds it."""

from __future__ import annotations

from workers.app import create_app

app = create_app(main="tests.dropin_pkg")


@app.task(name="dropin_pkg.double")
def double(x: int) -> int:
    return 2 * x
