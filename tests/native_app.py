"""An ordinary Celery app module, as a user would write it, for the Celery-native path tests."""

from __future__ import annotations

from workers.app import create_app

app = create_app(main="tests.native_app")


@app.task(name="tests.add")
def add(x: int, y: int) -> int:
    return x + y


def _count_run(task, key: str) -> int:
    from workers.hooks import store_for

    store = store_for(task.app)
    return int(store.client.incr(store.keys.demo(key)))


@app.task(
    name="tests.flaky_policy",
    bind=True,
    ym_retry={"max_attempts": 3, "backoff": 0.1, "retry_on": ["ValueError"]},
)
def flaky_policy(self, key: str, failures: int) -> int:
    """Retried by its own ``ym_retry`` option."""
    run = _count_run(self, key)
    if run <= failures:
        raise ValueError(f"run {run}")
    return run


@app.task(
    name="tests.flaky_autoretry",
    bind=True,
    autoretry_for=(ValueError,),
    retry_backoff=1,
    retry_jitter=False,
    max_retries=2,
)
def flaky_autoretry(self, key: str, failures: int) -> int:
    """Retried by Celery's own ``autoretry_for`` (1 s, then 2 s)."""
    run = _count_run(self, key)
    if run <= failures:
        raise ValueError(f"run {run}")
    return run
