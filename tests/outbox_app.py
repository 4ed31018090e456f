"""A Celery app module whose task records effects in its outbox (the outbox tests)."""

from __future__ import annotations

import time

from workers.app import create_app
from workers.hooks import store_for

app = create_app(main="tests.outbox_app")


@app.task(name="tests.outbox_record", bind=True)
def outbox_record(self, key: str, entry: str, fail: bool = False, hold: float = 0.0) -> int:
    """Record ``RPUSH key entry`` and ``INCRBY key:total 1`` in the outbox, then count
    the run directly under ``key:runs``; the first run then sleeps ``hold`` seconds.
    Raises after that when ``fail``. Returns the run number."""
    self.effects.rpush(key, entry)
    self.effects.incrby(key + ":total", 1)
    run = int(store_for(self.app).client.incr(key + ":runs"))
    if run == 1:
        time.sleep(hold)
    if fail:
        raise ValueError(f"{key}: asked to fail")
    return run
