"""The worker's main-process listener for terminate requests.

``TaskHandle.cancel(terminate=True)`` cannot reach a pool process directly: it
leaves a request on the worker's control list, and the :class:`Controller`
thread in the worker's main process revokes the run through Celery's own
remote control, which kills the pool process. What is then recorded is
decided in :mod:`workers.outcome`.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.app.control import Control

from scheduler.errors import StoreError
from scheduler.store import Store

log = logging.getLogger("yardmaster.worker")


class Controller:
    """The main process's listener for terminate requests (``TaskHandle.cancel(terminate=True)``).

    A request names the task, the attempt and the signal; when this worker still
    runs that attempt, the run is revoked with ``terminate=True`` through Celery's
    remote control, which kills the pool process; the ``task_revoked`` signal
    then records the task as cancelled.
    """

    def __init__(self, app: Celery, store: Store, worker: str) -> None:
        self.app = app
        self.store = store
        self.worker = worker
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True, name="ym-control")

    def start(self) -> None:
        """Begin listening (a daemon thread)."""
        self.thread.start()

    def close(self) -> None:
        """Stop listening."""
        self.stop.set()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                entry = self.store.workers.next_control(self.worker, 1.0)
            except StoreError:
                log.exception("reading terminate requests for %s failed; retrying", self.worker)
                self.stop.wait(1.0)
                continue
            if entry is not None and "terminate" in entry:
                try:
                    self.terminate(str(entry["terminate"]), int(entry["attempt"]), entry["signal"])
                except Exception:
                    log.exception("terminating %s failed", entry["terminate"])

    def terminate(self, task_id: str, attempt: int, signal: str) -> bool:
        """Kill this worker's run of ``task_id`` if it is still attempt ``attempt`` here."""
        state, worker, current = self.store.tasks.running_on(task_id)
        if state not in ("running", "dispatched") or worker != self.worker or current != attempt:
            log.info("terminate of %s ignored: it is %s on %r", task_id, state, worker)
            return False
        log.warning("terminating task %s attempt %d with %s", task_id, attempt, signal)
        # Celery's own broadcast revoke: a yardmaster app's control.revoke cancels the
        # record instead (workers/publishing.py), which is what asked for this.
        Control.revoke(
            self.app.control, task_id, terminate=True, signal=signal, destination=[self.worker]
        )
        return True
