"""What the transactional outbox costs: nothing extra for a task without effects, and
how much one effect adds.

Usage::

    python -m benchmarks.outbox [--against REV] [--calls N] [--rounds R] [--json-out FILE]

Two measurements:

pool process (CPU time)
    Building the ``guard_exit.lua`` call a finishing body sends
    (``Guard.exit_call``), ``N`` x 10 times, best of ``R`` rounds, each kind in
    a process of its own, best of two passes: the code of ``--against``
    (unpacked with ``git archive``), this tree with no outbox, and this tree
    with an outbox holding one ``RPUSH`` (recorded and encoded).

Redis (its own accounting, ``INFO commandstats`` microseconds per call)
    ``N`` ``guard_exit`` calls of distinct tasks pipelined into a private
    ``redis-server`` per round, for the script of ``--against`` (a git
    revision, ``f2ed45c`` by default: the code before the outbox) and for
    this tree's script without effects and with one ``RPUSH``, the three
    taking turns each round.
    Median and minimum over ``R`` rounds. Other sessions sharing the CPUs move
    these figures; compare within one run.

One JSON object goes to stdout (and ``--json-out``); progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from scheduler.embedded import EmbeddedRedis  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.store import Store, connect  # noqa: E402
from scheduler.store.outbox import Outbox  # noqa: E402


def _one_effect(task_id: str) -> Outbox:
    effects = Outbox()
    effects.rpush("bench:audit", task_id)
    return effects


POOL_SNIPPET = """
import sys, time
from scheduler.settings import load_settings
calls, rounds, effects = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
url = "redis://127.0.0.1:1/0"  # never connected: exit_call only builds the call
try:
    from scheduler.store import Store, connect
    guard = Store(connect(url), load_settings(redis_url=url)).guards.for_delivery("t", 1)
except ImportError:  # a tree from before the store's repositories (--against)
    from scheduler.store import StateStore, connect
    from scheduler.store.guard import Guard
    guard = Guard(StateStore(connect(url), load_settings(redis_url=url)), "t", 1)
if effects:
    from scheduler.store.outbox import Outbox
best = float("inf")
for _ in range(rounds):
    t0 = time.process_time()
    for _ in range(calls):
        if effects:
            outbox = Outbox()
            outbox.rpush("bench:audit", "t")
            guard.exit_call("succeeded", "null", "", outbox)
        else:
            guard.exit_call("succeeded", "null", "")
    best = min(best, (time.process_time() - t0) / calls)
print(best * 1e6)
"""


def _tree(rev: str, into: Path) -> Path:
    """The sources of git revision ``rev``, unpacked into ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def pool_cpu(against: str, calls: int, rounds: int) -> dict[str, float]:
    """CPU per ``Guard.exit_call``, each kind in its own process, best over two passes."""
    with tempfile.TemporaryDirectory(prefix="ym-outbox-") as tmp:
        old = _tree(against, Path(tmp))
        kinds = {
            f"{against}, no effects": (old, "0"),
            "this tree, no effects": (ROOT, "0"),
            "this tree, one RPUSH": (ROOT, "1"),
        }
        out: dict[str, float] = {}
        for _ in range(2):
            for kind, (tree, effects) in kinds.items():
                env = dict(os.environ, PYTHONPATH=str(tree))
                cmd = [sys.executable, "-c", POOL_SNIPPET, str(calls * 10), str(rounds), effects]
                done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(done.stderr)
                usec = round(float(done.stdout), 3)
                out[kind] = min(out.get(kind, usec), usec)
                progress(f"pool process, {kind}: {usec} us CPU per call")
        return out


def redis_cpu(store: Store, against: str, calls: int, rounds: int) -> dict[str, Any]:
    old = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{against}:scheduler/store/lua/guard_exit.lua"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shas = {
        f"{against}, no effects": store.client.script_load(old),
        "this tree, no effects": store.client.script_load(store.scripts.source("guard_exit")),
        "this tree, one RPUSH": store.client.script_load(store.scripts.source("guard_exit")),
    }
    per: dict[str, list[float]] = {kind: [] for kind in shas}
    for r in range(rounds):
        for kind, sha in shas.items():
            store.client.flushdb()
            made = [store.guards.for_delivery(f"t{i}", 1) for i in range(calls)]
            effects = "RPUSH" in kind
            batch = [
                g.exit_call("succeeded", "null", "", _one_effect(g.task_id) if effects else None)
                for g in made
            ]
            store.client.config_resetstat()
            pipe = store.client.pipeline(transaction=False)
            for keys, args in batch:
                pipe.evalsha(sha, len(keys), *keys, *args)
            pipe.execute()
            usec = store.client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
            per[kind].append(float(usec))
        progress(f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]}" for k, v in per.items()))
    return {
        kind: {"median_us": round(statistics.median(v), 2), "min_us": min(v), "rounds": v}
        for kind, v in per.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="f2ed45c")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json-out", type=Path, default=None)
    opts = parser.parse_args()
    server = EmbeddedRedis().start()
    try:
        store = Store(connect(server.url), load_settings(redis_url=server.url))
        info = machine()
        report = {
            "benchmark": "outbox",
            "command": " ".join(["python -m benchmarks.outbox", *sys.argv[1:]]),
            "date": today(),
            "code": code_state(("scheduler",), (".py", ".lua")),
            "machine": info,
            "calls": opts.calls,
            "rounds": opts.rounds,
            "pool_process_cpu_us_per_exit_call": pool_cpu(opts.against, opts.calls, opts.rounds),
            "redis_us_per_guard_exit": redis_cpu(store, opts.against, opts.calls, opts.rounds),
        }
    finally:
        server.stop()
    finish_machine(info)
    emit(report, opts.json_out)


if __name__ == "__main__":
    main()
