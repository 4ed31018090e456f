"""A Celery app with ``opentelemetry-instrumentation-celery`` switched on beside yardmaster's spans."""

from __future__ import annotations

from typing import Any

from celery import signals
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor

from broker_config.celery_app import app_settings
from scheduler import tracing
from workers.app import create_app

app = create_app(main="tests.otel_celery_app")


@signals.worker_process_init.connect(weak=False)
def _instrument(**_: Any) -> None:
    # As the instrumentation's documentation asks for prefork pools: in each pool process.
    tracing.configure(app_settings(app), "yardmaster-worker")
    CeleryInstrumentor().instrument()


@app.task(name="tests.traced")
def traced(value: int) -> int:
    """Open a span of its own inside the body: the application's view of the trace."""
    with trace.get_tracer("tests").start_as_current_span("body"):
        return value * 2
