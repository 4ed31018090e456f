"""Log lines that tie a task together across processes: its id, attempt, worker and
workflow as fields of every line about it, as text or as JSON (``YM_LOG_FORMAT``).

A line is about a task when it was logged with ``extra=task_fields(...)``, inside
:func:`task_context` (a worker pool process sets it around each run), or by Celery
with the task's id in its arguments (``Task sleep[<id>] succeeded ...``). The
:class:`TaskFields` filter, on each handler, fills the fields in; the formatters
write them: ``text`` appends `` [task=<id> attempt=<n> worker=<w>]`` to the usual
line, ``json`` writes one object per line with ``ts``, ``level``, ``logger``,
``service``, ``process``, ``pid``, ``msg``, the task fields and ``exc``.

Imports nothing of ours: every layer may log through it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FIELDS = ("task_id", "attempt", "worker", "workflow", "event")
"""Record attributes a line about a task carries (``event``: what happened to it)."""

TEXT = "%(asctime)s %(name)s %(levelname)s %(message)s"

_context: ContextVar[Mapping[str, Any] | None] = ContextVar("ym_task_log", default=None)


def task_fields(
    task_id: str,
    attempt: int | None = None,
    worker: str | None = None,
    workflow: str | None = None,
    event: str | None = None,
) -> dict[str, Any]:
    """``extra=`` for a log call about a task (the fields that are known)."""
    out: dict[str, Any] = {"task_id": task_id}
    for key, value in (
        ("attempt", attempt),
        ("worker", worker),
        ("workflow", workflow),
        ("event", event),
    ):
        if value is not None and value != "":
            out[key] = value
    return out


@contextmanager
def task_context(**fields: Any) -> Iterator[None]:
    """Every line logged inside (in this thread or task) is about this task."""
    token = _context.set({k: v for k, v in fields.items() if v is not None and v != ""})
    try:
        yield
    finally:
        _context.reset(token)


def enter_task(**fields: Any) -> None:
    """Like :func:`task_context`, for hooks that cannot wrap the run (Celery's signals);
    :func:`leave_task` ends it."""
    _context.set({k: v for k, v in fields.items() if v is not None and v != ""})


def leave_task() -> None:
    """End what :func:`enter_task` began."""
    _context.set(None)


class TaskFields(logging.Filter):
    """Fills a record's task fields from the current task context, or from Celery's
    ``{'id': ...}`` arguments; ``defaults`` (a worker's name) complete a line about
    a task that lacks them."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.defaults: Mapping[str, Any] = defaults if defaults is not None else {}

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        if context:
            for key, value in context.items():
                if getattr(record, key, None) is None:
                    setattr(record, key, value)
        if getattr(record, "task_id", None) is None:
            args = record.args
            if isinstance(args, Mapping) and isinstance(args.get("id"), str):
                record.task_id = args["id"]
        if getattr(record, "task_id", None) is not None:
            for key, value in self.defaults.items():
                if getattr(record, key, None) is None:
                    setattr(record, key, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k in FIELDS if (v := getattr(record, k, None)) is not None}


class TextFormatter(logging.Formatter):
    """The usual text line (``inner``'s, when given: Celery's own formatter), with
    `` [task=... attempt=... worker=...]`` after the message when it is about a task."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__(TEXT)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record) if self.inner is not None else super().format(record)
        fields = _fields(record)
        if not fields:
            return line
        shown = " ".join(f"{k.removesuffix('_id')}={v}" for k, v in fields.items())
        head, nl, tail = line.partition("\n")  # after the message, before a traceback
        return f"{head} [{shown}]{nl}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``service`` names the program (dispatcher, worker, api)."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "process": record.processName,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, default=str)


def formatter(
    log_format: str, service: str, inner: logging.Formatter | None = None
) -> logging.Formatter:
    """The formatter of ``YM_LOG_FORMAT`` (``text`` wraps ``inner`` when given)."""
    return JsonFormatter(service) if log_format == "json" else TextFormatter(inner)


def configure(log_format: str, level: str | int, service: str) -> None:
    """Log to stderr in ``log_format`` at ``level`` from this process's root logger
    (what the dispatcher, the API and the monitor do at start-up)."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format, service))
    handler.addFilter(TaskFields())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)


def adopt(
    logger: logging.Logger,
    log_format: str,
    service: str,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Give the handlers someone else set up (Celery's) our formatter and filter; in the
    text format each handler keeps its own formatter, the task fields added after it."""
    for handler in logger.handlers:
        if isinstance(handler.formatter, TextFormatter | JsonFormatter):
            continue
        handler.setFormatter(formatter(log_format, service, handler.formatter))
        if not any(isinstance(f, TaskFields) for f in handler.filters):
            handler.addFilter(TaskFields(defaults))
