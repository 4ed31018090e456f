"""Random layered DAG workloads: ``yardmaster workload gen --kind dag``.

:func:`generate_dag` is pure and deterministic (one ``random.Random(seed)``),
like :func:`scheduler.workload_gen.generate`. It makes ``dags`` workflows of
about ``n / dags`` tasks each. A workflow is built layer by layer: a layer's
width is drawn from 1 to ``2 * width - 1`` (mean ``width``); each task after
the first layer depends on 1 to ``fan_in`` tasks, the first from the layer
just before it (so it sits in its layer) and the others from the two layers
before, never on a task that already feeds ``fan_out`` others. The first
layer is one task, and a layer is never wider than ``fan_out`` times the one
before, so every task has a parent in the layer before: a workflow is
connected, from its one start task to its sinks. Durations come from the
five task types of the other kinds (0.06 to 0.45 s, +-10 %).

Every sink (a task nothing depends on) carries the workflow's deadline:
``submit_at + slack * max(critical path, work / slots)`` with the true
durations, the lower bound of any schedule on the cluster the load is sized
for, stretched by ``slack``. All tasks of a workflow are submitted together
(as a workflow is submitted in one call); workflows arrive as a Poisson
stream at ``load`` of the cluster's capacity. With ``hints``, each task
carries its type's typical duration as ``expected_duration``; without, the
strategies learn them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scheduler.errors import InvalidInputError
from scheduler.workflow import build_graph
from scheduler.workload import WorkloadTask
from scheduler.workload_gen import MAX_TASKS, TASK_TYPES

DAG_KIND = "dag"


@dataclass(frozen=True, slots=True)
class DagShape:
    """The options of a DAG workload (see the module docstring), validated.

    Attributes:
        dags: Number of workflows.
        width: Mean tasks per layer; None: twice the cluster's slots.
        fan_in: Most parents of a task.
        fan_out: Most children of a task.
        slack: Deadline over the workflow's lower bound (1 = no room at all).
        load: Arrival rate of workflows as a share of the cluster's capacity.
        hints: Whether tasks carry their type's typical duration as a hint.
    """

    dags: int = 1
    width: int | None = None
    fan_in: int = 3
    fan_out: int = 3
    slack: float = 1.5
    load: float = 0.8
    hints: bool = False

    def __post_init__(self) -> None:
        for field, value, low in (
            ("dags", self.dags, 1),
            ("width", self.width, 1),
            ("fan_in", self.fan_in, 1),
            ("fan_out", self.fan_out, 1),
        ):
            if value is None and field == "width":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 10**6:
                raise InvalidInputError(field, value, f"an integer from {low} to 1000000")
        if not 1.0 <= self.slack <= 1000.0:
            raise InvalidInputError("slack", self.slack, "a number from 1 to 1000")
        if not 0.01 <= self.load <= 1.0:
            raise InvalidInputError("load", self.load, "a number from 0.01 to 1")


def generate_dag(
    n: int,
    seed: int,
    *,
    workers: int = 2,
    slots: int = 1,
    scale: float = 1.0,
    shape: DagShape | None = None,
) -> list[WorkloadTask]:
    """``n`` tasks in ``shape.dags`` random layered workflows, in submission order.

    Raises:
        InvalidInputError: Naming the argument, its value and what is allowed.
    """
    shape = shape if shape is not None else DagShape()
    if isinstance(n, bool) or not isinstance(n, int) or not shape.dags <= n <= MAX_TASKS:
        raise InvalidInputError(
            "n", n, f"an integer from {shape.dags} (one per DAG) to {MAX_TASKS}"
        )
    for field, value in (("workers", workers), ("slots", slots)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(field, value, "an integer >= 1")
    if not 0.001 <= scale <= 1000.0:
        raise InvalidInputError("scale", scale, "a number from 0.001 to 1000")
    rng = random.Random(seed)
    capacity = workers * slots
    width = shape.width if shape.width is not None else 2 * capacity
    tasks: list[WorkloadTask] = []
    at = 0.0
    for k in range(shape.dags):
        size = n // shape.dags + (1 if k < n % shape.dags else 0)
        names, durations, parents = _layered(rng, size, width, shape.fan_in, shape.fan_out, scale)
        ids = [f"g{k}.{i}" for i in range(size)]
        graph = build_graph(ids, [[ids[p] for p in mine] for mine in parents])
        longest, _ = graph.critical_path(durations)
        work = sum(durations)
        deadline = at + shape.slack * max(longest, work / capacity)
        for i in range(size):
            hint = None
            if shape.hints:
                hint = round(_BASE[names[i]] * scale, 6)
            tasks.append(
                WorkloadTask(
                    id=ids[i],
                    name=names[i],
                    submit_at=round(at, 6),
                    duration=round(durations[i], 6),
                    deadline=None if graph.children[i] else round(deadline, 6),
                    expected_duration=hint,
                    depends_on=tuple(ids[p] for p in parents[i]),
                )
            )
        at += rng.expovariate(shape.load * capacity / work)
    return tasks


_BASE = {t.name: t.duration for t in TASK_TYPES}
_WEIGHTS = [t.weight for t in TASK_TYPES]


def _layered(
    rng: random.Random, size: int, width: int, fan_in: int, fan_out: int, scale: float
) -> tuple[list[str], list[float], list[list[int]]]:
    """Names, durations and parents (indices) of one layered workflow of ``size`` tasks."""
    names: list[str] = []
    durations: list[float] = []
    parents: list[list[int]] = []
    children = [0] * size
    layers: list[list[int]] = []
    while len(names) < size:
        # One start task; then no wider than the layer before has room for.
        most = fan_out * len(layers[-1]) if layers else 1
        count = min(size - len(names), rng.randint(1, 2 * width - 1), most)
        layer = list(range(len(names), len(names) + count))
        for _ in layer:
            kind = rng.choices(TASK_TYPES, weights=_WEIGHTS)[0]
            names.append(kind.name)
            durations.append(kind.duration * scale * rng.uniform(0.9, 1.1))
            parents.append([])
        if layers:
            for i in layer:  # first parents: one each from the layer before, which has room
                first = rng.choice([p for p in layers[-1] if children[p] < fan_out])
                parents[i].append(first)
                children[first] += 1
            earlier = [p for before in layers[-2:] for p in before]
            for i in layer:
                room = [p for p in earlier if children[p] < fan_out and p not in parents[i]]
                extra = rng.sample(room, min(rng.randint(1, fan_in) - 1, len(room)))
                for p in extra:
                    children[p] += 1
                parents[i] += extra
        layers.append(layer)
    return names, durations, parents
