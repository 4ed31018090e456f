"""Tasks with dependencies and workflows: their atomic submission and their members.

A task with parents is stored ``waiting`` and released by the step that ends
its last parent (``_dependents.lua``, included by every script that ends a
task); see docs/workflows.md. A batch with dependencies goes through
``submit_after.lua`` in one call, so a refusal (a parent missing, expired or
already failed) stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from scheduler.models import TaskSpec
from scheduler.store.base import Repository
from scheduler.store.connection import translated
from scheduler.store.durability import wait_replicas
from scheduler.store.tasks import admission_args, admitted, task_args

_PASS = {False: "0", True: "1", "single": "single", "id": "id"}
"""A spec's pass_results as the record keeps it (read by _dependents.lua)."""

REFUSALS = ("exists", "missing", "expired", "ended")
"""The first word of a ``submit_after.lua`` refusal."""


class Workflows(Repository):
    """Dependent submissions and the task sets of workflows."""

    @translated
    def submit(
        self,
        ids: Sequence[str],
        specs: Sequence[TaskSpec],
        workflow_id: str = "",
        *,
        trace: Mapping[str, Any] | None = None,
        ranks: Sequence[tuple[float | None, float | None]] | None = None,
    ) -> list[int] | list[str]:
        """Store a batch whose tasks may wait on each other or on stored tasks.

        ``ids`` come with each parent before its children. The batch passes
        admission control first (docs/reliability.md, "Backpressure"); ``trace``
        (the submit span's context) goes into every record's options, as for
        :meth:`Tasks.submit`. ``ranks`` gives each task's remaining path and propagated
        deadline (:func:`scheduler.workflow_client.graph_ranks`; None where it has
        none), which the records keep and the dispatcher's entries carry. Returns each task's sequence number, or the
        refusal ``[kind, id, parent, state]`` (kind in :data:`REFUSALS`) with
        nothing stored.

        Raises:
            BackpressureError: The batch was refused (backlog or memory bound);
                nothing of it was stored.
            ReplicationError: Fewer replicas than ``YM_DURABLE_REPLICAS`` confirmed the
                accepted batch in time (it stays accepted).
        """
        k = self._keys
        keys = [k.seq, k.pending, k.inbox, k.stats, k.pending_by_priority]
        keys += [k.workflow(workflow_id), k.delayed, k.admission, k.memory_sample]
        keys += [k.task(i) for i in ids]
        args: list[Any] = [k.task_prefix, k.dependents(""), workflow_id]
        args += admission_args(self._settings)
        if ranks is None:
            ranks = [(None, None)] * len(ids)
        for task_id, spec, (path, latest) in zip(ids, specs, ranks, strict=True):
            args += task_args(task_id, spec, trace)
            args.append(json.dumps(list(dict.fromkeys(spec.depends_on)), separators=(",", ":")))
            args += [spec.on_parent_failure, _PASS[spec.pass_results]]
            args += [_number(path), _number(latest)]
        reply = admitted(
            lambda: self._scripts("submit_after", keys, args), self._client, self._settings
        )
        head = _text(reply[0])
        if head != "ok":
            return [head, *(_text(r) for r in reply[1:])]
        wait_replicas(
            self._client, self._keys, self._settings, f"the submission of {len(ids)} tasks"
        )
        return [int(r) for r in reply[1:]]

    @translated
    def replace(self, task_id: str, replacement_id: str) -> list[str]:
        """Hand running task ``task_id``'s waiting dependents to ``replacement_id`` (a
        stored task) in one step, and note it on the record (``replaced_by``): Celery's
        ``self.replace``; see ``replace.lua``. Returns ``["ok", moved]``, or the refusal
        ``["not_running", state]`` / ``["missing", replacement_id]`` with nothing changed.
        """
        k, s = self._keys, self._settings
        keys = [k.task(task_id), k.dependents(task_id)]
        keys += [k.task(replacement_id), k.dependents(replacement_id)]
        keys += [k.pending, k.pending_by_priority, k.inbox, k.stats, k.events]
        args = [task_id, replacement_id, k.task_prefix, k.dependents(""), s.result_ttl]
        args.append(s.events_maxlen)
        return [_text(r) for r in self._scripts("replace", keys, args)]

    @translated
    def waiting(self) -> int:
        """How many tasks are in state ``waiting`` now (a gauge the scripts keep)."""
        return max(0, int(self._client.get(self._keys.waiting) or 0))

    @translated
    def recent(self, limit: int) -> list[tuple[str, float]]:
        """Up to ``limit`` workflows, newest first, as ``(id, first submission)``.

        Entries whose task set has expired (``YM_RESULT_TTL`` after their last
        task ended) are removed from the index on the way.
        """
        out: list[tuple[str, float]] = []
        start = 0
        while len(out) < limit:
            page = cast(
                list[tuple[Any, Any]],
                self._client.zrevrange(
                    self._keys.workflows, start, start + limit - 1, withscores=True
                ),
            )
            if not page:
                break
            start += len(page)
            pipe = self._client.pipeline(transaction=False)
            for member, _ in page:
                pipe.exists(self._keys.workflow(_text(member)))
            gone: list[str] = []
            for (member, at), alive in zip(page, pipe.execute(), strict=True):
                if alive:
                    out.append((_text(member), float(at)))
                else:
                    gone.append(_text(member))
            if gone:
                self._client.zrem(self._keys.workflows, *gone)
                start -= len(gone)
        return out[:limit]

    @translated
    def members(self, workflow_id: str) -> list[str]:
        """The task ids of a workflow (empty once it expired or if it never existed)."""
        return sorted(_text(m) for m in self._client.smembers(self._keys.workflow(workflow_id)))


def _number(value: float | None) -> str:
    """A path or deadline as ``submit_after.lua`` takes it ('' for none)."""
    return "" if value is None else repr(float(value))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
