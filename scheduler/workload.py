"""Workload files (JSON Lines): one format for the simulator, the replay and the demo.

Each line is one task: ``id``, ``name``, ``submit_at`` (seconds from the
workload's start) and ``duration`` (true run time, seconds) are required;
``priority`` (0..9, default 5), ``deadline`` (seconds from the start),
``expected_duration``, ``affinity_key``, ``depends_on`` (ids that must succeed
first), ``on_parent_failure`` (``cancel``, the default, or ``run``: what a task
does when a parent fails, is cancelled or expires) and ``fails`` are optional. A bad line is reported with its number and
field, and nothing of the file is used.

Two readers, one result. :func:`parse_workload` validates line by line with
pydantic and names what is wrong; it is the reference. :func:`load_workload`
first tries msgspec on the whole file at once (about 30 times faster), which
accepts only files of one plain shape, each row an exact JSON type match for
its field; anything else, a bad line included, goes to the reference, so an
error always reads the same and a file the reference refuses is never
accepted. ``tests/test_workload_fast.py`` checks the two agree.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler.errors import WorkflowError, WorkloadError
from scheduler.workflow import build_graph

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
    "on_parent_failure": "cancel or run",
    "fails": "true or false",
}

# msgspec's constraints for the fast reader; the upper bound refuses infinity.
_Text = Annotated[str, msgspec.Meta(min_length=1)]
_Time = Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]
_Span = Annotated[float, msgspec.Meta(gt=0, le=sys.float_info.max)]
_Priority = Annotated[int, msgspec.Meta(ge=0, le=9)]


class WorkloadTask(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One task of a workload (a row of the file, validated).

    A msgspec struct, not a pydantic model: a workload can hold millions of
    rows, and a struct is decoded from JSON in C and built in a fraction of
    the time. Building one directly (generators, tests) does not validate.
    """

    id: _Text
    name: _Text
    submit_at: _Time
    duration: _Span
    priority: _Priority = 5
    deadline: _Time | None = None
    expected_duration: _Span | None = None
    affinity_key: _Text | None = None
    depends_on: tuple[str, ...] = ()
    fails: bool = False
    on_parent_failure: Literal["cancel", "run"] = "cancel"


class _Row(BaseModel):
    """The reference validation of one line (pydantic), with its error report."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

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
    on_parent_failure: Literal["cancel", "run"] = "cancel"


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
            row = _Row.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "line"
            allowed = _ALLOWED.get(field, "no such field; fields are: " + ", ".join(_ALLOWED))
            raise WorkloadError(source, number, field, data.get(field), allowed) from None
        if row.id in lines_of:
            raise WorkloadError(
                source, number, "id", row.id, f"a unique id (also on line {lines_of[row.id]})"
            )
        lines_of[row.id] = number
        tasks.append(WorkloadTask(**dict(row)))
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
    if not any(t.depends_on for t in tasks):
        return None
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


_ROWS = msgspec.json.Decoder(WorkloadTask)


def parse_fast(data: bytes) -> list[WorkloadTask] | None:
    """The rows of a whole file in one msgspec call, or None when the reference must decide.

    The fast shape: ``#`` lines start at column 0, no ``\\r``, and every other
    line is exactly one JSON object from ``{`` to ``}``. msgspec reads the
    lines as one stream of values, and each line must yield exactly one row:
    a newline inside a string is invalid JSON, and rows only hold strings,
    numbers and lists of strings, so a ``}`` that ends a line ends a row, and
    one line cannot hold less than a row. None is also returned for anything
    the reference would refuse (duplicate ids, unknown dependencies, cycles),
    so that the reference reports the error.
    """
    if b"\r" in data:
        return None
    plain = _plain_body(data)
    if plain is not None:  # the usual file: comments at most on top, read in place
        body, newlines = plain
    else:  # comments further down, or not the fast shape: a copy without them decides
        if data.startswith(b"#") or b"\n#" in data:
            uncommented = _without_comments(data)
            if uncommented is None:
                return None
            data = uncommented
        stripped = data.strip()
        if not stripped:
            return []
        newlines = stripped.count(b"\n")
        if stripped[:1] != b"{" or stripped[-1:] != b"}" or stripped.count(b"}\n{") != newlines:
            return None
        body = memoryview(stripped)
    try:
        tasks = _ROWS.decode_lines(body)
    except msgspec.MsgspecError:
        return None
    if len(tasks) != newlines + 1:
        return None
    ids = {t.id for t in tasks}
    if len(ids) != len(tasks):
        return None
    if any(t.depends_on for t in tasks):
        try:  # unknown parents, self-dependencies, cycles: the reference names the line
            build_graph([t.id for t in tasks], [t.depends_on for t in tasks], limit=len(tasks))
        except WorkflowError:
            return None
    return tasks


_SPACE = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() strips


def _plain_body(data: bytes) -> tuple[memoryview, int] | None:
    """The rows of a file whose only comments are its first lines, without copying it,
    and the number of newlines between them.

    The view spans what ``_without_comments(data).strip()`` would hold, when
    that starts with ``{``, ends with ``}`` and every newline in it stands
    between ``}`` and ``{`` (so no line of it is a comment); None otherwise,
    or when a leading comment is not UTF-8 (the general path then decides).
    """
    start = 0
    while data.startswith(b"#", start):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return None
        start = end
    end = len(data)
    while start < end and data[start] in _SPACE:
        start += 1
    while end > start and data[end - 1] in _SPACE:
        end -= 1
    if end - start < 2 or data[start] != 0x7B or data[end - 1] != 0x7D:  # "{" ... "}"
        return None
    newlines = data.count(b"\n", start, end)
    if data.count(b"}\n{", start, end) != newlines:
        return None
    return memoryview(data)[start:end], newlines


def _without_comments(data: bytes) -> bytes | None:
    """``data`` less its lines that start with ``#``; None if one is not UTF-8 (the reference's case)."""
    starts = [0] if data.startswith(b"#") else []
    at = data.find(b"\n#")
    while at >= 0:
        starts.append(at + 1)
        at = data.find(b"\n#", at + 1)
    pieces = []
    kept = 0
    for start in starts:
        pieces.append(data[kept:start])
        end = data.find(b"\n", start)
        kept = len(data) if end < 0 else end + 1
        try:
            data[start:kept].decode("utf-8")
        except UnicodeDecodeError:
            return None
    pieces.append(data[kept:])
    return b"".join(pieces)


def load_workload(path: str | Path) -> list[WorkloadTask]:
    """Read and validate a workload file (see the module docstring for the two readers).

    The cyclic garbage collector is paused while the fast reader runs: it
    makes no reference cycles, and the collector would walk the growing
    rows again and again (their ``depends_on`` tuples are tracked), which
    doubled the time to read and check a 300,000-task DAG.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    enabled = gc.isenabled()
    gc.disable()
    try:
        tasks = parse_fast(data)
    finally:
        if enabled:
            gc.enable()
    if tasks is not None:
        return tasks
    with open(path, encoding="utf-8") as handle:
        return parse_workload(handle, str(path))
