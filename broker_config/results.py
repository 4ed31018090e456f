"""Celery's result backend over yardmaster's own task records: ``AsyncResult`` works.

``AsyncResult(id).get()``, ``.state``, ``.ready()``, ``.successful()`` and
``.traceback`` read the task's record (``<ns>:task:<id>``) that the dispatcher
and the workers keep anyway, so there is no second copy of a result. A failed
run's record carries its exception's type, module and arguments (written by
:mod:`workers.failures`), so ``.get(propagate=True)`` re-raises the original
type, by name, as Celery does over JSON: the class is looked up in the caller's
already imported modules, never imported from the record, and must be an
exception (Celery's own check).

States, yardmaster -> Celery: pending -> PENDING (also for an unknown id, as
Celery answers), dispatched -> RECEIVED, running -> STARTED, succeeded ->
SUCCESS, failed -> FAILURE, cancelled and expired -> REVOKED.

The apps' ``result_backend`` is the store's URL under this backend's alias,
``redis-yardmaster://host:port/db`` (see :func:`broker_config.celery_app.backend_url`):
Celery finds this class by the scheme, and the backend reads the Redis the URL names.

Nothing is written here: the workers' hooks write the records, and what
Celery's worker hands the backend as it marks a run failed or revoked is
already on the record (the apps set ``task_ignore_result``, so successes are
not handed at all).
"""

from __future__ import annotations

import json
import time
from typing import Any

from celery import states
from celery.backends.base import BaseBackend
from celery.exceptions import TimeoutError as CeleryTimeoutError

from broker_config.celery_app import app_settings, store_url
from scheduler.redaction import redact_url
from scheduler.store import Store

_STATES = {
    "pending": states.PENDING,
    "dispatched": states.RECEIVED,
    "running": states.STARTED,
    "succeeded": states.SUCCESS,
    "failed": states.FAILURE,
    "cancelled": states.REVOKED,
    "expired": states.REVOKED,
}
_POLL_START = 0.002
_MAX_REPLACEMENTS = 100
"""How many ``self.replace`` hops a result follows (a task replaced by a task that
replaces itself, ...); past it, the last one read is the answer."""


class YardmasterBackend(BaseBackend):
    """Reads task outcomes from yardmaster's records (see the module's docstring)."""

    persistent = True
    supports_autoexpire = True
    """Records expire by themselves (``YM_RESULT_TTL``): celery beat then adds no daily
    ``celery.backend_cleanup`` entry, a task no yardmaster worker runs."""

    def __init__(self, app: Any, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(app, url=url, **kwargs)
        self._store: Store | None = None

    def as_uri(self, include_password: bool = False) -> str:
        """The backend's URL for the worker's banner and logs, password hidden unless
        asked for. Celery's own parses it as one host and port, which a Sentinel URL
        (several hosts, ';' between them) is not: the worker stopped at its banner."""
        url = str(self.url or "")  # type: ignore[attr-defined]  # set by BaseBackend
        return url if include_password else redact_url(url)

    @property
    def store(self) -> Store:
        """The state store of the app's cluster (made on first use): the Redis its
        ``result_backend`` URL names (``redis-yardmaster://...``, see
        :func:`broker_config.celery_app.backend_url`), else the broker's."""
        if self._store is None:
            app = self.app  # type: ignore[attr-defined]  # set by Celery's BaseBackend
            url = store_url(str(self.url or "")) or str(app.conf.broker_url)  # type: ignore[attr-defined]
            self._store = Store.from_url(url, app_settings(app))
        return self._store

    def _get_task_meta_for(self, task_id: str) -> dict[str, Any]:
        detail = self.store.tasks.outcome_detail(str(task_id))
        # a task that called self.replace(sig): its outcome is its replacement's, as in
        # Celery (where the replacement takes the id); followed down a few replacements
        for _ in range(_MAX_REPLACEMENTS):
            if "replaced_by" not in detail:
                break
            detail = self.store.tasks.outcome_detail(detail["replaced_by"])
        state = _STATES.get(detail.get("state", "pending"), states.PENDING)
        meta: dict[str, Any] = {
            "task_id": task_id,
            "status": state,
            "result": None,
            "traceback": None,
            "children": [],
        }
        if state == states.SUCCESS:
            meta["result"] = json.loads(detail.get("result") or "null")
        elif state == states.FAILURE:
            meta["result"] = failure_of(detail)
            meta["traceback"] = detail.get("traceback") or detail.get("error")
        elif state == states.REVOKED:
            why = detail.get("error") or detail.get("state", "")
            meta["result"] = {
                "exc_type": "TaskRevokedError",
                "exc_module": "celery.exceptions",
                "exc_message": [f"{detail.get('state')}: {why}"],
            }
        if "finished_at" in detail:
            meta["date_done"] = float(detail["finished_at"])
        return meta

    def wait_for(
        self,
        task_id: str,
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_interval: Any = None,
    ) -> dict[str, Any]:
        """Poll the record until the task is done, from 2 ms up to ``interval`` apart."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _POLL_START
        while True:
            meta = self.get_task_meta(task_id, cache=False)
            if meta["status"] in states.READY_STATES:
                return meta
            if on_interval:
                on_interval()
            if deadline is not None and time.monotonic() >= deadline:
                raise CeleryTimeoutError("The operation timed out.")
            time.sleep(delay)
            delay = min(interval, delay * 2)

    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> None:
        """Instead of Celery's ``chord_unlock`` task polling the header's results, the
        body becomes a task waiting on the server for every header task
        (:func:`workers.publishing.expect_chord`): released once, by the last
        header task's end, with the header's results in order."""
        from workers.publishing import expect_chord  # it imports this module's app

        header = self.app.GroupResult(*header_result_args)  # type: ignore[attr-defined]
        expect_chord(str(header.id), [str(r.id) for r in header.results], body)

    def _store_result(self, task_id: str, result: Any, *args: Any, **kwargs: Any) -> Any:
        # Celery's worker calls this as it marks a run failed (whether results are
        # ignored or not); the worker's hooks write the record, so nothing is stored twice.
        return result

    def mark_as_revoked(self, *args: Any, **kwargs: Any) -> None:
        # Celery's worker calls this for a revoked or expired message; the hooks record it.
        return None


def failure_of(detail: dict[str, str]) -> dict[str, Any]:
    """Celery's serialized exception of a failed record: the worker's note of the
    exception (type, module, arguments), else its error text ``Type: message``."""
    error = detail.get("error") or "unknown error"
    noted = detail.get("exc")
    if noted:
        found: dict[str, Any] = json.loads(noted)
        # a note from an earlier attempt does not describe a later failure of another kind
        if error.startswith(str(found.get("exc_type", "")).rpartition(".")[2] + ":"):
            return found
    name, _, message = error.partition(": ")
    if not name.isidentifier():
        name, message = "TaskFailedError", error
    return {"exc_type": name, "exc_module": None, "exc_message": [message]}
