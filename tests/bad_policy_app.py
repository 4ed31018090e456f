"""A Celery app whose task declares an orphan policy that does not exist (for test_orphans)."""

from __future__ import annotations

from workers.app import create_app

app = create_app(main="tests.bad_policy_app")


@app.task(name="tests.sometimes", on_orphan="sometimes")
def sometimes() -> None:
    """Never runs: the worker refuses to start."""
