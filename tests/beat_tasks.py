"""A Celery project with a beat schedule, for tests/test_celery_beat.py: run with
``celery -A tests.beat_tasks beat`` beside ``yardmaster worker -A tests.beat_tasks``."""

from __future__ import annotations

import time
from typing import Any

from workers.app import create_app

app = create_app(main="tests.beat_tasks")
app.conf.beat_schedule = {
    "tick-every-second": {
        "task": "beat.tick",
        "schedule": 1.0,
        "args": (7,),
        # beat passes an entry's options to apply_async: they are honoured as for any call
        "options": {"expires": 60, "priority": 8},
    },
    # an option yardmaster cannot honour: beat logs the refusal naming it, sends
    # nothing for this entry, and keeps the rest of its schedule running
    "tick-to-an-exchange": {
        "task": "beat.tick",
        "schedule": 1.0,
        "args": (0,),
        "options": {"exchange": "reports"},
    },
}


@app.task(name="beat.tick", bind=True)
def tick(self: Any, n: int) -> dict[str, Any]:
    """What the run saw: beat's header, its priority, its argument and when it ran."""
    return {
        "n": n,
        "beat": getattr(self.request, "celery_beat_task", None),
        "priority": (self.request.delivery_info or {}).get("priority"),
        "at": time.time(),
    }
