"""A yardmaster Celery app with queue routing and placement defaults, as a user writes them:
``task_routes``, ``@app.task(queue=...)`` and ``@app.task(labels=..., prefer=...)``."""

from __future__ import annotations

from workers.app import create_app

app = create_app(main="tests.routed_app")
app.conf.task_routes = {"routed.by_route": {"queue": "reports"}}


@app.task(name="routed.plain")
def plain() -> str:
    """No placement of its own: runs wherever the call's options allow."""
    return "plain"


@app.task(name="routed.by_route")
def by_route() -> str:
    """Sent to the queue 'reports' by the app's task_routes."""
    return "routed"


@app.task(name="routed.on_queue", queue="reports")
def on_queue() -> str:
    """Its decorator names the queue 'reports'."""
    return "queued"


@app.task(name="routed.in_eu", labels={"zone": "eu"})
def in_eu() -> str:
    """Its decorator requires the label zone=eu (a call's labels= overrides it)."""
    return "eu"


@app.task(name="routed.likes_us", prefer={"zone": "us"})
def likes_us() -> str:
    """Its decorator prefers workers labelled zone=us."""
    return "us"
