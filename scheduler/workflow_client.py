"""The client's side of dependencies and workflows (docs/workflows.md).

A batch in which a task names parents (``depends_on``) or carries its own id
is checked as a graph first (:func:`scheduler.workflow.build_graph`: repeated
ids, self-dependency, cycles, the ``YM_MAX_WORKFLOW`` size limit, every error
naming the ids), then stored in one atomic step, each parent before its
children; the server refuses, storing nothing, a parent outside the batch
whose record is missing or expired. Parents outside the batch are checked
there, not here, because only the server knows them atomically.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.errors import InvalidInputError, WorkflowError
from scheduler.models import TaskSpec, TaskState
from scheduler.store import Store
from scheduler.workflow import Graph, build_graph

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"
"""A client-chosen task or workflow id: what the HTTP API's paths accept."""


def check_id(value: object, where: str) -> str:
    """A client-chosen task or workflow id, checked against :data:`ID_PATTERN`."""
    if not isinstance(value, str) or not re.fullmatch(ID_PATTERN, value):
        raise InvalidInputError(
            where, value, "1 to 200 letters, digits, '_', '.', ':' or '-', unique"
        )
    return value


def store_dependent(
    store: Store,
    ids: Sequence[str],
    specs: Sequence[TaskSpec],
    workflow_id: str = "",
    *,
    trace: Mapping[str, Any] | None = None,
) -> None:
    """Validate the batch's graph and store it atomically (``submit_after.lua``), past
    admission control; ``trace`` is the submit span's context for the records.

    Raises:
        BackpressureError: The cluster is full; nothing is stored.
        WorkflowError: A repeated id, a self-dependency, a cycle, too many tasks,
            or a parent outside the batch that is missing, expired, or already
            failed or cancelled (for a task that would then not run); nothing is
            stored.
        InvalidInputError: A task id already exists.
    """
    inside = set(ids)
    outside = {p for spec in specs for p in spec.depends_on if p not in inside}
    graph = build_graph(
        ids,
        [spec.depends_on for spec in specs],
        limit=store.settings.max_workflow,
        outside=outside,
    )
    paths, latest = graph_ranks(graph, specs, store)
    order = graph.order
    reply = store.workflows.submit(
        [ids[i] for i in order],
        [specs[i] for i in order],
        workflow_id,
        trace=trace,
        ranks=[(paths[i], latest[i]) for i in order],
    )
    if reply and isinstance(reply[0], str):
        _refuse([str(r) for r in reply])


def graph_ranks(
    graph: Graph, specs: Sequence[TaskSpec], store: Store
) -> tuple[list[float | None], list[float | None]]:
    """Each task's remaining path (upward rank) and propagated deadline, as the simulator's
    release gives them (:mod:`scheduler.simulator.dag`), for the records and the dispatcher.

    Expected durations are the hint, else the cluster's learned EMA of the task's
    duration key, else ``YM_DEFAULT_DURATION``; deadlines propagate back from every
    task's own with ``YM_DEADLINE_MARGIN``. A task with no parent nor child (in the batch or stored) has no path (None: its rank is its own expected duration, as for any
    task outside a workflow); a task with no deadline at or after it has no
    propagated deadline (None), nor one whose own deadline is already the sooner,
    so neither adds a field to its record or its
    dispatcher entry.
    """
    n = len(specs)
    # In a workflow: a parent or a child in the batch, or a parent stored before it.
    linked = [bool(graph.parents[i] or graph.children[i] or specs[i].depends_on) for i in range(n)]
    if not any(linked):
        return [None] * n, [None] * n
    settings = store.settings
    learned = store.estimates.durations() if any(s.expected_duration is None for s in specs) else {}
    default = settings.default_duration
    estimate = [
        s.expected_duration
        if s.expected_duration is not None
        else learned.get(s.duration_key or s.name, default)
        for s in specs
    ]
    paths: list[float | None] = [
        p if on else None for p, on in zip(graph.ranks(estimate), linked, strict=True)
    ]
    if not any(s.deadline is not None for s, on in zip(specs, linked, strict=True) if on):
        return paths, [None] * n
    own = [s.deadline for s in specs]
    latest = graph.latest_finishes(estimate, own, settings.deadline_margin)
    # Only where it moves a task's deadline: the record's own serves otherwise.
    return paths, [
        d if on and d != mine else None for d, mine, on in zip(latest, own, linked, strict=True)
    ]


def _refuse(reply: list[str]) -> None:
    kind, task_id = reply[0], reply[1]
    if kind == "exists":
        raise InvalidInputError(
            "id", task_id, "an id no stored task has", problem="a task with this id exists"
        )
    parent = reply[2]
    problems = {
        "missing": f"parent {parent!r} of task {task_id!r} has no record (never submitted, "
        "or its record expired)",
        "expired": f"parent {parent!r} of task {task_id!r} expired unrun",
        "ended": f"parent {parent!r} of task {task_id!r} already "
        f"{reply[3] if len(reply) > 3 else 'ended'} (a task on_parent_failure='cancel' "
        "would not run after a failure, nor one 'run_only' after a success)",
    }
    raise WorkflowError(
        f"{task_id}.depends_on",
        parent,
        "ids of stored tasks that did not expire (failed or cancelled ones only with "
        "on_parent_failure='run'; failed ones only with 'run_only')",
        problem=problems[kind],
        ids=(task_id, parent),
    )


@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    """Where a workflow is: how many of its tasks are in each state.

    Attributes:
        id: The workflow's id.
        counts: Tasks per state (only states that occur).
        states: Each task's state, by task id (``missing`` once a record expired).
    """

    id: str
    counts: dict[str, int] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many tasks the workflow holds."""
        return len(self.states)

    @property
    def finished(self) -> bool:
        """Whether every task reached a terminal state."""
        return all(s not in _UNFINISHED for s in self.states.values())

    @property
    def done(self) -> int:
        """How many of its tasks reached a terminal state (its progress: done of total)."""
        return sum(n for state, n in self.counts.items() if state not in _UNFINISHED)

    def as_json(self) -> dict[str, object]:
        """The status as the HTTP API and ``yardmaster workflow show --json`` give it."""
        return {
            "id": self.id,
            "total": self.total,
            "finished": self.finished,
            "counts": self.counts,
            "tasks": self.states,
        }


_UNFINISHED = {s.value for s in TaskState if not s.terminal}


def workflow_status(store: Store, workflow_id: str) -> WorkflowStatus:
    """The status of workflow ``workflow_id``.

    Raises:
        WorkflowError: No such workflow (never submitted, or expired).
    """
    ids = store.workflows.members(workflow_id)
    if not ids:
        raise WorkflowError(
            "workflow",
            workflow_id,
            "the id of a stored workflow",
            problem="unknown or expired",
            ids=(workflow_id,),
        )
    states: dict[str, str] = {}
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        for task_id, state in zip(part, store.tasks.states(part), strict=True):
            states[task_id] = state or "missing"
    return WorkflowStatus(workflow_id, dict(Counter(states.values())), states)


def cancel_workflow(store: Store, workflow_id: str) -> int:
    """Cancel every unfinished task of a workflow; return how many were cancelled or flagged.

    Waiting tasks go first, so each is cancelled as part of the workflow
    rather than for its parent; running ones are flagged (and, as for one
    task, ended by the worker when the body checks or with terminate).
    """
    status = workflow_status(store, workflow_id)
    rank = {TaskState.WAITING.value: 0, TaskState.PENDING.value: 1}
    todo = sorted(
        (t for t, s in status.states.items() if s in _UNFINISHED),
        key=lambda t: rank.get(status.states[t], 2),
    )
    reason = f"workflow {workflow_id} cancelled"
    return sum(store.tasks.cancel(t, reason) in ("cancelled", "running") for t in todo)


def recent_workflows(store: Store, scan: int = 200) -> list[dict[str, Any]]:
    """The ``scan`` newest workflows of the index, newest first, with their progress.

    Each item: ``id``, ``submitted_at`` (its first submission), ``total``,
    ``done`` (tasks in a terminal state), ``finished`` and ``counts`` by state.
    Each costs a read of its tasks' states, hence the bound.
    """
    out: list[dict[str, Any]] = []
    for workflow_id, at in store.workflows.recent(scan):
        try:
            status = workflow_status(store, workflow_id)
        except WorkflowError:
            continue  # its set expired since the index was read
        out.append(
            {
                "id": workflow_id,
                "submitted_at": at,
                "total": status.total,
                "done": status.done,
                "finished": status.finished,
                "counts": status.counts,
            }
        )
    return out


def live_workflows(store: Store, limit: int = 20, scan: int = 200) -> list[dict[str, Any]]:
    """The newest unfinished workflows, at most ``limit``, among the ``scan`` newest
    (see :func:`recent_workflows`), so that a status stays cheap on a cluster that
    ran many."""
    return [wf for wf in recent_workflows(store, scan) if not wf["finished"]][:limit]
