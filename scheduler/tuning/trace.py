"""A trace to tune on: checked, fingerprinted, and split by time.

The tasks are taken in arrival order (``submit_at``, then file order, as the
simulator numbers them); the first part trains, the last part (``holdout``,
a share of the tasks) is held out, so a candidate is judged on traffic that
came after everything it was chosen on. A dependency that crosses the cut is
dropped (its parent is taken as done). The training part is cut again into a
few consecutive segments, the steps at which a trial reports its progress so
that hopeless trials are pruned early; each segment is simulated from an idle
cluster that has learned nothing yet.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from scheduler.errors import InvalidInputError
from scheduler.workload import WorkloadTask, load_workload

MIN_PART = 20  # tasks in each of the training and held-out parts
SEGMENT_TASKS = 250  # at least this many tasks per training segment
MAX_SEGMENTS = 4


@dataclass(frozen=True)
class Split:
    """A trace cut by time.

    Attributes:
        train: The first tasks, in arrival order.
        holdout: The last ``holdout`` share of them.
        cut: Submission time of the first held-out task.
        segments: ``train`` cut into consecutive parts (pruning steps).
    """

    train: list[WorkloadTask]
    holdout: list[WorkloadTask]
    cut: float
    segments: list[list[WorkloadTask]]


def digest(path: str | Path) -> str:
    """The trace file's SHA-256 (hex): two runs on the same bytes share it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_trace(path: str | Path) -> list[WorkloadTask]:
    """Read a workload file for tuning.

    Raises:
        InvalidInputError: For an empty trace (and every error of a bad line).
    """
    tasks = load_workload(path)
    if not tasks:
        raise InvalidInputError(
            "WORKLOAD",
            str(path),
            "a trace of at least one task per line (yardmaster workload gen, or a trace export)",
            problem="the trace holds no task, so there is nothing to tune on",
        )
    return tasks


def check_trace(tasks: Sequence[WorkloadTask], holdout: float) -> list[str]:
    """Refuse a trace tuning cannot work on; return warnings about one it may help little.

    Refused: too few tasks for both parts, and a trace whose tasks are alike in
    everything a strategy sees (one task name, one priority, no deadlines,
    hints, affinity keys, dependencies or failures): every strategy then runs
    them in submission order on the least-loaded worker, so no setting can
    change the schedule. Warned: one task name (duration estimates are the same
    for every task, so ``sjf`` and the duration settings cannot help; priorities,
    deadlines and affinity still can).

    Raises:
        InvalidInputError: Naming the trace's property and what tuning needs.
    """
    n = len(tasks)
    held = math.ceil(n * holdout)
    if n - held < MIN_PART or held < MIN_PART:
        need = max(math.ceil(MIN_PART / holdout), math.ceil(MIN_PART / (1 - holdout))) + 1
        raise InvalidInputError(
            "WORKLOAD",
            f"{n} tasks",
            f"at least {need} tasks ({MIN_PART} to train on and {MIN_PART} held out "
            f"with a held-out share of {holdout:g})",
            problem="too few tasks to tune on",
        )
    names = {t.name for t in tasks}
    if len(names) > 1:
        return []
    (name,) = names
    alike = len({t.priority for t in tasks}) == 1 and not any(
        t.deadline is not None
        or t.expected_duration is not None
        or t.affinity_key is not None
        or t.depends_on
        or t.fails
        for t in tasks
    )
    if alike:
        raise InvalidInputError(
            "WORKLOAD",
            f"{n} tasks named {name!r}",
            "tasks that differ in something a strategy sees: name, priority, deadline, "
            "expected_duration, affinity_key, depends_on or fails",
            problem=(
                "every task is alike to every strategy (one name, one priority, nothing else "
                "set), so every configuration runs them in the same order: tuning cannot help"
            ),
        )
    return [
        f"every task is named {name!r}: duration estimates are the same for all of them, so "
        "sjf and the duration settings (default_duration, ema_alpha) cannot help; priorities, "
        "deadlines and affinity still can"
    ]


def split_trace(tasks: Sequence[WorkloadTask], holdout: float) -> Split:
    """Cut ``tasks`` by time: the last ``holdout`` share (at least one task) is held out."""
    ordered = sorted(tasks, key=lambda t: t.submit_at)  # stable: file order breaks ties
    n = len(ordered)
    first_held = n - max(1, math.ceil(n * holdout))
    train = _within(ordered[:first_held])
    held = _within(ordered[first_held:])
    count = max(1, min(MAX_SEGMENTS, len(train) // SEGMENT_TASKS))
    bounds = [round(i * len(train) / count) for i in range(count + 1)]
    segments = [_within(train[a:b]) for a, b in itertools.pairwise(bounds)]
    return Split(train, held, ordered[first_held].submit_at, segments)


def _within(part: Sequence[WorkloadTask]) -> list[WorkloadTask]:
    """``part`` with every dependency on a task outside it dropped."""
    ids = {t.id for t in part}
    return [
        t
        if all(d in ids for d in t.depends_on)
        else msgspec.structs.replace(t, depends_on=tuple(d for d in t.depends_on if d in ids))
        for t in part
    ]
