"""Deliveries: a worker's start and finish of one dispatched task, and what a finish reports.

``start.lua`` moves a delivery from dispatched to running (and may take the
execution guard in the same step); ``finish.lua`` records how it ended,
frees the slot, learns from it and hands the slot its next task. The pool
process sends both through its report line (:mod:`scheduler.store.reports`),
which builds them with :meth:`Deliveries.start_call` and
:meth:`Deliveries.finish_call`; :meth:`Deliveries.start` and
:meth:`Deliveries.finish` send one at once (the worker's main process, tests).

:class:`Verdict` and :class:`FinishReport` are msgspec structs: one is made per
task on the worker's hot path, where a frozen dataclass costs ten times more.
"""

from __future__ import annotations

from typing import Any

import msgspec

from scheduler.store.base import Repository
from scheduler.store.connection import translated

Call = tuple[list[str], list[Any]]
"""A script's KEYS and ARGV, for a caller that sends it itself."""


class Verdict(msgspec.Struct, frozen=True):
    """How a run ended, in ``finish.lua``'s terms.

    Attributes:
        outcome: ``succeeded``, ``failed``, ``cancelled``, ``retry`` or ``skipped``.
        result: The result as JSON (kept for ``succeeded``).
        error: What went wrong (kept for the other outcomes).
        reason: Why it ended so (``error``, ``timeout``, ``retry``, ...); '' for none.
        delay: For ``retry``: seconds until it may run again.
        args: For ``retry``: the next run's positional arguments as JSON text, stored on
            the record in the same step ('': the record's stay).
        kwargs: For ``retry``: the next run's keyword arguments, likewise.
    """

    outcome: str
    result: str = "null"
    error: str = ""
    reason: str = ""
    delay: float = 0.0
    args: str = ""
    kwargs: str = ""


class FinishReport(msgspec.Struct, frozen=True):
    """What a worker reports when a delivery ends.

    Attributes:
        task_id: The task.
        attempt: The delivery's attempt number (only its report counts).
        verdict: How the run ended.
        runtime: Seconds the body ran.
        duration_key: The key whose duration EMA learns from a success ('': the
            record's, with ``nonce``).
        affinity_key: The key whose affinity score learns from it ('': none, or the
            record's with ``nonce``).
        nonce: A held start's nonce: the outcome counts only if that start was
            recorded (docs/reliability.md, "Held start"); '' for none.
    """

    task_id: str
    attempt: int
    verdict: Verdict
    runtime: float = 0.0
    duration_key: str = ""
    affinity_key: str = ""
    nonce: str = ""


class Deliveries(Repository):
    """Starts and finishes of deliveries, for one namespace."""

    @translated
    def start(
        self, task_id: str, worker: str, attempt: int, nonce: str = ""
    ) -> tuple[bool, str, str]:
        """Mark a delivery as running. Returns (run?, duration key or state, affinity key).

        ``nonce`` names the delivery: a repeat of the same call runs, another
        delivery of the running attempt is skipped (see ``start.lua``).
        """
        return start_verdict(
            self._scripts("start", *self.start_call(task_id, worker, attempt, nonce))
        )

    def start_call(
        self, task_id: str, worker: str, attempt: int, nonce: str = "", guard: Call | None = None
    ) -> Call:
        """KEYS and ARGV of ``start.lua`` for one delivery.

        ``guard`` (from :meth:`Guard.start_args <scheduler.store.guard.Guard.start_args>`)
        makes the same call take the execution guard too.
        """
        keys = [self._keys.task(task_id), self._keys.stats]
        args: list[Any] = [worker, attempt, nonce]
        if guard is not None:
            keys += guard[0]
            args += guard[1]
        return keys, args

    @translated
    def finish(self, worker: str, report: FinishReport) -> str:
        """Record a delivery's outcome once; see ``finish.lua`` for the replies."""
        return str(self._scripts("finish", *self.finish_call(worker, report)))

    def finish_call(self, worker: str, report: FinishReport) -> Call:
        """KEYS and ARGV of ``finish.lua`` for ``worker``'s delivery (see :meth:`finish`)."""
        k, s, v = self._keys, self._settings, report.verdict
        affinity_key = report.affinity_key
        keys = [k.task(report.task_id), k.stats, k.worker(worker), k.worker_tasks(worker)]
        keys += [k.durations, k.duration_counts, k.affinity(affinity_key or "-")]
        keys += [k.events, k.inbox, k.handoff, k.pending, k.pending_by_priority]
        keys += [k.worker_queue(worker), k.delayed, k.outcomes, k.dependents(report.task_id)]
        args: list[Any] = [report.task_id, worker, v.outcome, v.result, v.error]
        args += [f"{report.runtime:.6f}", report.duration_key, s.ema_alpha, s.affinity_step]
        args += [affinity_key, s.result_ttl, s.events_maxlen, report.attempt, k.task_prefix]
        args += [v.reason, f"{v.delay:.6f}", k.concurrency_prefix]
        if report.nonce or v.args or v.kwargs:
            args += [report.nonce, k.affinity_prefix]
        if v.args or v.kwargs:  # a retry with new arguments (self.retry(args=...))
            args += [v.args, v.kwargs]
        return keys, args


def start_verdict(reply: Any) -> tuple[bool, str, str]:
    """(run?, duration key or state, affinity key) from a ``start.lua`` reply."""
    if reply[0] == "run":
        return True, str(reply[1]), str(reply[2])
    return False, str(reply[1]), ""


def guard_answer(reply: Any) -> tuple[str, str]:
    """The execution guard's part of a ``start.lua`` reply that says run.

    ``("run", "")`` (taken, or not asked for), ``("done", outcome JSON)`` or
    ``("held", holder token)``.
    """
    if len(reply) > 3:
        return str(reply[3]), str(reply[4])
    return "run", ""
