"""Chaos figures: runs the chaos test (and, as root, the multi-host test) and keeps what they measured.

Usage::

    python -m benchmarks.chaos [--runs N] [--seed S] [--json-out FILE]

Each run is ``tests/test_chaos.py``: 5,000 ``ledger`` tasks (7 ms each) on 3
workers (2 slots) and 2 dispatchers, a random worker SIGKILLed every 2-4 s and
restarted 0.2-5 s later, the leading dispatcher SIGKILLed once (at a quarter of
the run) and Redis restarted once (at half; AOF on, down 1 s). The test writes
its figures (tasks, kills, restarts, lost, duplicated, re-runs after a kill, bodies
completed against effects committed through the outbox and duplicate effects,
takeover time) to ``$YM_CHAOS_RESULTS``; this script collects them, with the
code measured, into ``benchmarks/results/chaos.json`` (or ``--json-out``).
A run whose assertions fail is recorded as failed, with its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402


def one_run(seed: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ym-chaos-") as tmp:
        out = Path(tmp) / "chaos.json"
        env = dict(os.environ, YM_CHAOS_RESULTS=str(out))
        if seed is not None:
            env["YM_CHAOS_SEED"] = str(seed)
        cmd = [sys.executable, "-m", "pytest", "tests/test_chaos.py", "-q"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        figures: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
        figures["test_passed"] = done.returncode == 0
        if done.returncode != 0:
            figures["test_output_tail"] = done.stdout[-2000:]
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks/results/chaos.json")
    opts = parser.parse_args()
    info = machine()
    runs = []
    for i in range(opts.runs):
        progress(f"chaos run {i + 1}/{opts.runs} ...")
        figures = one_run(None if opts.seed is None else opts.seed + i)
        progress(json.dumps({k: v for k, v in figures.items() if k != "test_output_tail"}))
        runs.append(figures)
    report = {
        "benchmark": "chaos",
        "command": " ".join(["python -m benchmarks.chaos", *sys.argv[1:]]),
        "date": today(),
        "code": code_state(("scheduler", "workers", "broker_config"), (".py", ".lua")),
        "machine": finish_machine(info),
        "runs": runs,
    }
    emit(report, opts.json_out)


if __name__ == "__main__":
    main()
