"""Where the dispatcher's bytes per pending task go: its mirror, object by object.

Usage::

    python -m benchmarks.mirror_bytes [--tasks N] [--strategies A,B] [--json-out FILE]

``benchmarks/memory.py`` measures the whole (the dispatcher's RSS); this
breaks it down, in this process, without Redis. ``N`` inbox entries (default
100,000) shaped as ``submit.lua`` writes them for one ``submit_many`` call of
noop tasks (a 32-character hex id, the name, priority 5, the sequence
number, the submission time as text) are decoded as the dispatcher decodes
them (``json.loads``, then ``PendingTask.from_wire``) and added to the
strategy's queue inside the dispatcher's ``GatedQueue``. Then every object
the queue keeps is counted once, by what it is for:

record
    the ``PendingTask`` struct;
id
    the task id's text;
names
    the name and grouping keys' texts (shared ones count once, over ``N``);
numbers
    the record's own boxed numbers (``seq``, ``submitted_at``);
index
    the dict of live tasks by id;
order
    the strategy's order: heap lists, their entry tuples, and the numbers made
    for them (a rank, a key tuple) that the record does not hold.

Sizes are ``sys.getsizeof``, rounded up to pymalloc's 16-byte blocks for
objects of at most 512 bytes (what the process pays; larger ones come from
``malloc``). ``tracemalloc``'s count of what stays allocated is given beside
the total as a check.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
import uuid
from collections import Counter, deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, today  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.gate import Gate, GatedQueue  # noqa: E402
from scheduler.models import Estimates, PendingTask  # noqa: E402
from scheduler.settings import STRATEGY_NAMES, load_settings  # noqa: E402
from scheduler.strategies import IndexedQueue  # noqa: E402

PARTS = ("record", "id", "names", "numbers", "index", "order")
_CONTAINERS = (dict, list, tuple, deque)


def paid(obj: object) -> int:
    """Bytes the allocator hands out for ``obj`` (pymalloc rounds small blocks up to 16)."""
    size = sys.getsizeof(obj)
    return (size + 15) // 16 * 16 if size <= 512 else size


def wire_entries(n: int) -> list[str]:
    """``n`` inbox entries of one ``submit_many`` of noop tasks, as JSON text."""
    t0 = 1_765_000_000.0
    return [
        json.dumps({"id": uuid.uuid4().hex, "n": "noop", "p": 5, "s": i + 2, "t": f"{t0:.6f}"})
        for i in range(n)
    ]


def build(strategy_name: str, raw: list[str]) -> tuple[IndexedQueue, int]:
    """The strategy's queue holding every entry of ``raw``, and tracemalloc's bytes kept."""
    strategy = build_strategy(strategy_name, load_settings({}, strategy=strategy_name))
    estimates = Estimates()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    queue = GatedQueue(strategy, lambda: strategy.make_queue(estimates), Gate(1.0))
    for start in range(0, len(raw), 10_000):  # the dispatcher's inbox batch
        entries = [json.loads(text) for text in raw[start : start + 10_000]]
        for entry in entries:
            queue.add(PendingTask.from_wire(entry))
        del entries
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    inner = queue.plain()
    if not isinstance(inner, IndexedQueue):
        raise RuntimeError(f"{strategy_name}: the queue is not an indexed queue")
    return inner, kept


def breakdown(inner: IndexedQueue) -> Counter[str]:
    """Bytes kept by ``inner``, by part (see the module's docstring)."""
    seen: set[int] = set()
    parts: Counter[str] = Counter()

    def count(obj: object, part: str) -> bool:
        if id(obj) in seen:
            return False
        seen.add(id(obj))
        parts[part] += paid(obj)
        return True

    index: dict[str, PendingTask] = inner._tasks
    count(index, "index")
    for task_id, task in index.items():
        count(task, "record")
        count(task_id, "id")
        for field in task.__struct_fields__:
            value = getattr(task, field)
            if isinstance(value, str):
                count(value, "names")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                count(value, "numbers")
    attributes = [
        getattr(inner, slot, None)
        for c in type(inner).__mro__
        for slot in c.__dict__.get("__slots__", ())
    ]
    attributes += list(getattr(inner, "__dict__", {}).values())
    stack: list[Any] = [a for a in attributes if isinstance(a, _CONTAINERS) and a is not index]
    while stack:
        obj = stack.pop()
        if not count(obj, "order"):
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, _CONTAINERS):
            stack.extend(obj)
    return parts


def main(argv: list[str] | None = None) -> int:
    """Run the breakdown; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument(
        "--strategies", default=",".join(n for n in STRATEGY_NAMES if n != "adaptive")
    )
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    info = machine()
    raw = wire_entries(args.tasks)
    figures: dict[str, Any] = {}
    for name in args.strategies.split(","):
        inner, kept = build(name, raw)
        parts = breakdown(inner)
        row = {part: parts[part] / args.tasks for part in PARTS}
        row["total"] = sum(parts.values()) / args.tasks
        row["tracemalloc"] = kept / args.tasks
        figures[name] = row
        print(
            f"{name:>13}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in row.items())
            + " B per pending task",
            file=sys.stderr,
        )
        del inner
    emit(
        {
            "benchmark": "mirror_bytes",
            "command": " ".join(["python -m benchmarks.mirror_bytes", *(argv or sys.argv[1:])]),
            "date": today(),
            "tasks": args.tasks,
            "figures": figures,
            "code": code_state(("scheduler",), (".py",)),
            "machine": finish_machine(info),
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
