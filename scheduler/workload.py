"""Workload files (JSON Lines): one format for the simulator, the replay and the demo.

Each line is one task: ``id``, ``name``, ``submit_at`` (seconds from the
workload's start) and ``duration`` (true run time, seconds) are required;
``priority`` (0..9, default 5), ``deadline`` (seconds from the start),
``expected_duration``, ``affinity_key``, ``depends_on`` (ids that must succeed
first) and ``fails`` are optional. A bad line is reported with its number and
field, and nothing of the file is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler.errors import WorkloadError

_ALLOWED = {
    "id": "a unique non-empty string",
    "name": "a non-empty string (the task type)",
    "submit_at": "seconds from the workload's start, >= 0",
    "duration": "seconds, > 0",
    "priority": "an integer from 0 to 9",
    "deadline": "seconds from the workload's start, >= 0",
    "expected_duration": "seconds, > 0",
    "affinity_key": "a non-empty string",
    "depends_on": "a list of ids of other tasks in the file",
    "fails": "true or false",
}


class WorkloadTask(BaseModel):
    """One task of a workload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    submit_at: float = Field(ge=0, allow_inf_nan=False)
    duration: float = Field(gt=0, allow_inf_nan=False)
    priority: int = Field(default=5, ge=0, le=9, strict=True)
    deadline: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    expected_duration: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    affinity_key: str | None = Field(default=None, min_length=1)
    depends_on: tuple[str, ...] = ()
    fails: bool = False


def parse_workload(lines: Iterable[str], source: str = "<workload>") -> list[WorkloadTask]:
    """Parse JSON Lines; blank lines and lines starting with ``#`` are skipped.

    Raises:
        WorkloadError: naming ``source:line: field``, the value and what is allowed.
    """
    tasks: list[WorkloadTask] = []
    lines_of: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkloadError(
                source, number, "line", text[:60], f"one JSON object ({exc.msg})"
            ) from None
        if not isinstance(data, dict):
            raise WorkloadError(source, number, "line", data, "one JSON object per line")
        try:
            task = WorkloadTask.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "line"
            allowed = _ALLOWED.get(field, "no such field; fields are: " + ", ".join(_ALLOWED))
            raise WorkloadError(source, number, field, data.get(field), allowed) from None
        if task.id in lines_of:
            raise WorkloadError(
                source, number, "id", task.id, f"a unique id (also on line {lines_of[task.id]})"
            )
        lines_of[task.id] = number
        tasks.append(task)
    for task in tasks:
        for dep in task.depends_on:
            if dep not in lines_of or dep == task.id:
                raise WorkloadError(
                    source, lines_of[task.id], "depends_on", dep, _ALLOWED["depends_on"]
                )
    cyclic = _in_cycle(tasks)
    if cyclic is not None:
        raise WorkloadError(
            source,
            lines_of[cyclic.id],
            "depends_on",
            list(cyclic.depends_on),
            "no dependency cycle",
        )
    return tasks


def _in_cycle(tasks: list[WorkloadTask]) -> WorkloadTask | None:
    """A task on a dependency cycle, or None (Kahn's algorithm)."""
    waiting = {t.id: len(set(t.depends_on)) for t in tasks}
    children: dict[str, list[str]] = {}
    for t in tasks:
        for dep in set(t.depends_on):
            children.setdefault(dep, []).append(t.id)
    ready = [tid for tid, n in waiting.items() if n == 0]
    while ready:
        for child in children.get(ready.pop(), []):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return next((t for t in tasks if waiting[t.id] > 0), None)


def load_workload(path: str | Path) -> list[WorkloadTask]:
    """Read and validate a workload file."""
    with open(path, encoding="utf-8") as handle:
        return parse_workload(handle, str(path))
