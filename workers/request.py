"""The worker's request class for yardmaster tasks: reports hard time limits.

A hard time limit kills the pool process that runs the task, so the task's
own hooks never report. Celery's main process handles the timeout in
:meth:`Request.on_timeout`; here it also records the outcome (failed, reason
``timeout``) and so frees the slot.
"""

from __future__ import annotations

from typing import Any

from celery.worker.request import Request

from workers import hooks, outcome


class YardmasterRequest(Request):
    """Celery's request, plus the report of a hard time limit."""

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if not soft:
            headers: dict[str, Any] = self._request_dict  # type: ignore[attr-defined]
            outcome.report_from_main(
                hooks.store_for(self.task.app),
                self.id,
                headers.get("ym_attempt"),
                str(self.hostname),
                "failed",
                error=f"TimeLimitExceeded: hard time limit ({timeout:g}s) exceeded; "
                "the worker killed the run",
                reason="timeout",
            )
