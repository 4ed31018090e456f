"""The simulator's dependencies: when a task of a workflow is released, and what it carries.

The semantics are the live system's (docs/simulator.md, "Dependencies"): a
task waits, outside the strategy's queue, until every parent has succeeded,
and is released at its last parent's finish. When a parent fails, is
cancelled or expires, a dependent is cancelled with a reason that names the
parent (``on_parent_failure: "cancel"``, the default), or the parent counts
as done for it (``"run"``). A released task carries its remaining path and,
unless switched off, its propagated deadline (:mod:`scheduler.workflow`),
both from the path estimates as they stand at its release.

The engine builds a :class:`Dependencies` only for a workload that has
dependencies, so a workload without any pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.models import Estimates, PendingTask
from scheduler.workflow import NO_DEADLINE, PathEstimates, build_graph, components, fill_paths
from scheduler.workload import WorkloadTask

_NOT_STARTED = frozenset({"pending", "waiting", "cancelled"})


class Dependencies:
    """Waiting, release and cancellation of the tasks of one run, by arrival number.

    Args:
        tasks: The workload in arrival order (index = arrival number).
        state: The engine's list of task states, updated here for tasks that
            wait or are cancelled.
        reasons: The engine's reasons by arrival number; a cancellation adds one.
        estimates: The run's estimates at the start (their EMAs seed the path estimates).
        margin: Safety margin of propagated deadlines, seconds.
        propagate: Whether strategies see propagated deadlines (else each
            task's own deadline).
    """

    __slots__ = (
        "_estimate",
        "_hinted",
        "_latest",
        "_path",
        "_start",
        "_todo",
        "_version",
        "children",
        "deadline",
        "margin",
        "parents",
        "paths",
        "propagate",
        "reasons",
        "run_anyway",
        "state",
        "tasks",
        "waiting",
    )

    def __init__(
        self,
        tasks: Sequence[WorkloadTask],
        state: list[str],
        reasons: dict[int, str],
        estimates: Estimates,
        *,
        margin: float = 0.0,
        propagate: bool = True,
    ) -> None:
        graph = build_graph([t.id for t in tasks], [t.depends_on for t in tasks])
        n = len(tasks)
        self.tasks = tasks
        self.state = state
        self.reasons = reasons
        self.parents = graph.parents
        self.children = graph.children
        self.waiting = [len(p) for p in graph.parents]  # parents not yet resolved
        self.run_anyway = [t.on_parent_failure == "run" for t in tasks]
        self.margin = margin
        self.propagate = propagate
        self.paths = PathEstimates(estimates.default_duration, estimates.durations)
        self._version = -1  # of self.paths when the values below were computed
        # The tasks of workflows (with a parent or a child) not yet released, in
        # topological order: the ones whose paths are (re)computed.
        self._todo = [v for v in graph.order if graph.children[v] or graph.parents[v]]
        self._path = [0.0] * n
        # Hints never change: set once; the others are set at each computation.
        self._estimate = [
            0.0 if t.expected_duration is None else t.expected_duration for t in tasks
        ]
        self._hinted = [t.expected_duration is not None for t in tasks]
        has_deadlines = any(tasks[v].deadline is not None for v in self._todo)
        self.deadline: list[float] | None = None
        if has_deadlines:
            self.deadline = [NO_DEADLINE if t.deadline is None else t.deadline for t in tasks]
        self._latest = [NO_DEADLINE] * n
        self._start = [NO_DEADLINE] * n

    def arrive(self, s: int) -> bool:
        """Task ``s`` is submitted; True when it is ready at once (nothing to wait for)."""
        if self.state[s] != "pending":
            return False  # cancelled before it arrived: its parent ended first
        if self.waiting[s]:
            self.state[s] = "waiting"
            return False
        return True

    def learned(self, key: str, ema: float) -> None:
        """A duration key's EMA changed; paths follow it if it moved enough."""
        self.paths.observe(key, ema)

    def succeeded(self, s: int) -> list[int]:
        """Task ``s`` succeeded: the children it releases (arrived, nothing left to wait for)."""
        ready = []
        waiting = self.waiting
        for child in self.children[s]:
            waiting[child] -= 1
            if not waiting[child] and self.state[child] == "waiting":
                ready.append(child)
        return ready

    def ended(self, s: int) -> list[int]:
        """Task ``s`` ended without success (failed, expired or cancelled): its dependents
        are cancelled, transitively, or released when they run anyway. Returns the released."""
        ready: list[int] = []
        state, waiting, reasons = self.state, self.waiting, self.reasons
        ended = [s]  # breadth-first: a reason names the nearest parent that ended
        for parent in ended:
            why = f"parent {self.tasks[parent].id} {state[parent]}"
            for child in self.children[parent]:
                if state[child] not in ("pending", "waiting"):
                    continue  # already cancelled by another parent
                if self.run_anyway[child]:
                    waiting[child] -= 1
                    if not waiting[child] and state[child] == "waiting":
                        ready.append(child)
                    continue
                state[child] = "cancelled"
                reasons[child] = why
                ended.append(child)
        return ready

    def pending(self, s: int) -> PendingTask:
        """What the strategies see of task ``s`` at its release (its state becomes pending)."""
        t = self.tasks[s]
        self.state[s] = "pending"
        if self._version != self.paths.version:
            self._compute()
        deadline = t.deadline
        if self.propagate and self.deadline is not None:
            latest = self._latest[s]
            if latest != NO_DEADLINE:
                deadline = latest
        return PendingTask(
            t.id,
            t.name,
            t.priority,
            s,
            t.submit_at,
            deadline,
            t.expected_duration,
            t.affinity_key,
            path=self._path[s],
        )

    def workflows(self) -> list[int]:
        """A workflow label per task, by arrival number (see :func:`scheduler.workflow.components`)."""
        return components(self.parents)

    def _compute(self) -> None:
        """Paths and latest finishes of every workflow task not yet started, from the path
        estimates as they stand (children first, so each reads its children's).

        Cancelled tasks count too: a parent still waiting on its other parents
        has the same path whether or not one of its children was cancelled, so a
        path depends on the graph and the estimates alone.
        """
        state = self.state
        todo = self._todo = [v for v in self._todo if state[v] in _NOT_STARTED]
        tasks, estimate, hinted = self.tasks, self._estimate, self._hinted
        values, default = self.paths.values, self.paths.default
        for v in todo:
            if not hinted[v]:
                estimate[v] = values.get(tasks[v].name, default)
        fill_paths(
            reversed(todo),
            self.children,
            estimate,
            self.deadline,
            self.margin,
            self._path,
            self._latest,
            self._start,
        )
        self._version = self.paths.version
