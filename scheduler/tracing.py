"""OpenTelemetry spans for a task's life, linked across processes; optional.

One task gives one trace: the client's ``yardmaster.submit`` span, then in the
dispatcher ``yardmaster.wait`` (submission to dispatch) and ``yardmaster.dispatch``,
then in the worker ``yardmaster.run`` (start to finish, with the outcome). The
client's context travels in the task record (the ``trace`` entry of its options,
which both publish routes already carry), the dispatcher's in the Celery message
headers as W3C ``traceparent``, where ``opentelemetry-instrumentation-celery``
also looks for it.

``opentelemetry-api`` is optional (the ``[otel]`` extra): it is imported on first
use, and without it every function here does nothing. Each process exports
according to ``YM_OTEL`` (docs/observability.md, "Traces"); a process whose
application already installed an SDK tracer provider keeps it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from scheduler.settings import Settings

log = logging.getLogger("yardmaster.tracing")

TRACER = "yardmaster"
_lock = threading.Lock()
_configured: set[str] = set()  # "" once this process chose its exporter
_runs: dict[tuple[str, int], Any] = {}  # (task id, thread) -> the open run span
_provider: Any = None  # set by use_provider
_missing = False  # opentelemetry-api is not installed (or was blocked for a test)


def _api() -> ModuleType | None:
    """``opentelemetry.trace``, or None when the package is absent."""
    global _missing
    if _missing:
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        _missing = True
        return None
    return trace


def disable() -> None:
    """Act as if opentelemetry were not installed (the no-op path; for tests)."""
    global _missing
    _missing = True


def configure(settings: Settings, service: str) -> None:
    """Install this process's exporter now rather than at its first span.

    An application that adds its own instrumentation (``CeleryInstrumentor``)
    calls this first, so both use the provider ``YM_OTEL`` asks for.
    """
    if _api() is not None:
        _setup(settings, service)


def _setup(settings: Settings, service: str) -> None:
    """Install this process's exporter once, as ``YM_OTEL`` says."""
    with _lock:
        if _configured or settings.otel == "none":
            return
        _configured.add("")
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import (
                BatchSpanProcessor,
                ConsoleSpanExporter,
                SimpleSpanProcessor,
                SpanExporter,
            )
        except ImportError:
            log.error(
                "YM_OTEL=%s needs opentelemetry-sdk: pip install 'yardmaster[otel]'", settings.otel
            )
            return
        if isinstance(trace.get_tracer_provider(), TracerProvider):
            return  # the application set tracing up itself
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": service}))
        provider = TracerProvider(resource=resource)
        if settings.otel == "file":
            from scheduler.tracing_file import JsonLinesExporter

            provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(settings.otel_file)))
        elif settings.otel == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        else:
            exporter = _otlp_exporter(SpanExporter)
            if exporter is None:
                log.error(
                    "YM_OTEL=otlp needs an OTLP exporter: pip install "
                    "opentelemetry-exporter-otlp-proto-http (or -grpc); exporting nothing"
                )
                return
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)


def _otlp_exporter(base: type[Any]) -> Any:
    """The installed OTLP span exporter (HTTP first, then gRPC); it reads ``OTEL_EXPORTER_OTLP_*``."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
    except ImportError:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError:
            return None
    exporter = OTLPSpanExporter()
    return exporter if isinstance(exporter, base) else None


def use_provider(provider: Any) -> None:
    """Send yardmaster's spans to ``provider`` instead of the global one (None: back).

    For tests in one process, whose global provider can be set only once.
    """
    global _provider
    _provider = provider


def _tracer(settings: Settings, service: str) -> Any:
    trace = _api()
    if trace is None:
        return None
    if _provider is not None:
        return _provider.get_tracer(TRACER)
    _setup(settings, service)
    return trace.get_tracer(TRACER)


def _inject(span: Any) -> dict[str, str]:
    """The W3C headers (``traceparent``, ``tracestate``) naming ``span`` as the parent."""
    from opentelemetry import propagate, trace

    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def _extract(carrier: Mapping[str, Any]) -> Any:
    from opentelemetry import propagate

    return propagate.extract({k: str(v) for k, v in carrier.items() if v is not None})


# -- client ----------------------------------------------------------------------
@contextmanager
def submit(settings: Settings, names: Sequence[str]) -> Iterator[dict[str, Any] | None]:
    """The ``yardmaster.submit`` span around one batch; yields the trace entry for its records.

    The entry (``{"traceparent": ..., "submitted": ns}``) is None when nothing
    records: without opentelemetry, or with no tracer provider in this process.
    """
    tracer = _tracer(settings, "yardmaster-client")
    if tracer is None:
        yield None
        return
    attributes: dict[str, Any] = {"yardmaster.tasks": len(names)}
    if len(set(names)) == 1:
        attributes["yardmaster.task.name"] = names[0]
    with tracer.start_as_current_span("yardmaster.submit", attributes=attributes) as span:
        if not span.get_span_context().is_valid:
            yield None
            return
        entry: dict[str, Any] = dict(_inject(span), submitted=time.time_ns())
        yield entry


# -- dispatcher ------------------------------------------------------------------
def dispatch(
    settings: Settings, entry: Mapping[str, Any] | None, task_id: str, name: str, attempt: int = 0
) -> dict[str, str]:
    """Record the wait and the dispatch of one task; the headers its message carries.

    ``yardmaster.wait`` runs from the submission (the client's clock) to now,
    ``yardmaster.dispatch`` is the building of the message; both are children of
    the submit span. Returns ``{}`` when the task was not traced.
    """
    if not entry or not entry.get("traceparent"):
        return {}
    tracer = _tracer(settings, "yardmaster-dispatcher")
    if tracer is None:
        return {}
    parent = _extract(entry)
    attributes: dict[str, Any] = {"yardmaster.task.id": task_id, "yardmaster.task.name": name}
    if attempt:
        attributes["yardmaster.attempt"] = attempt
    now = time.time_ns()
    submitted = entry.get("submitted")
    start = min(int(submitted), now) if isinstance(submitted, int) else now
    tracer.start_span(
        "yardmaster.wait", context=parent, attributes=attributes, start_time=start
    ).end(end_time=now)
    span = tracer.start_span(
        "yardmaster.dispatch", context=parent, attributes=attributes, start_time=now
    )
    try:
        return _inject(span)
    finally:
        span.end()


def entry_of(options: str) -> dict[str, Any] | None:
    """The trace entry in a task record's options text (None when absent)."""
    if not options or '"trace"' not in options:
        return None
    entry = json.loads(options).get("trace")
    return entry if isinstance(entry, dict) else None


# -- worker ----------------------------------------------------------------------
def start_run(
    settings: Settings, request: Any, task_id: str, name: str, attempt: int, worker: str
) -> None:
    """Open the ``yardmaster.run`` span of a delivery, child of its message's dispatch span."""
    traceparent = getattr(request, "traceparent", None)
    if not traceparent:
        return
    tracer = _tracer(settings, "yardmaster-worker")
    if tracer is None:
        return
    carrier = {"traceparent": traceparent, "tracestate": getattr(request, "tracestate", None)}
    attributes = {
        "yardmaster.task.id": task_id,
        "yardmaster.task.name": name,
        "yardmaster.attempt": attempt,
        "yardmaster.worker": worker,
        "process.pid": os.getpid(),
    }
    span = tracer.start_span("yardmaster.run", context=_extract(carrier), attributes=attributes)
    _runs[(task_id, threading.get_ident())] = span


def finish_run(task_id: str, state: str, error: str = "") -> None:
    """Close the open run span of ``task_id`` in this thread with its outcome."""
    span = _runs.pop((task_id, threading.get_ident()), None)
    if span is None:
        return
    span.set_attribute("yardmaster.state", state)
    span.add_event("yardmaster.finish", {"yardmaster.state": state})
    if state == "failed":
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, error[:200] or None))
    span.end()
