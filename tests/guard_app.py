"""A Celery app module whose task counts how often its body really runs (guard and coalescing tests)."""

from __future__ import annotations

import time

from workers.app import create_app
from workers.hooks import store_for

app = create_app(main="tests.guard_app")


@app.task(name="tests.tally", bind=True)
def tally(self, counter: str, seconds: float = 0.0) -> dict[str, object]:
    """Count one run of the body in Redis under ``counter``, then sleep ``seconds``."""
    runs = store_for(self.app).client.incr(counter)
    time.sleep(seconds)
    return {"counter": counter, "run": runs}


@app.task(name="tests.cached_tally", bind=True, cache_ttl=60, cache_version="v1")
def cached_tally(self, counter: str) -> int:
    """Like ``tally``, with the solution cache switched on as a task option."""
    return int(store_for(self.app).client.incr(counter))
