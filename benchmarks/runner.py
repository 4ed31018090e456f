"""``python -m benchmarks all``: every benchmark in one run, one results JSON, fresh tables.

Each benchmark stays a module with its own command line
(``python -m benchmarks.NAME --help``); the runner starts each one as a
child process with the arguments of :data:`BENCHMARKS` (``--quick``: the
small ones, a smoke test that takes minutes, not an hour), collects the JSON
each prints, and writes them together with the machine and the commit into
one results file. It then rewrites the current-figures tables of
``docs/benchmarks.md`` from that file (``benchmarks/tables.py``); a quick run
leaves the docs alone unless ``--doc`` names a file, since its figures are
too small to stand for anything.

A benchmark that fails is recorded with its exit code and the end of its
error output, and the others still run; the runner then exits non-zero.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, code_state, finish_machine, machine, progress, today


@dataclass(frozen=True)
class Benchmark:
    """One benchmark module and the arguments of its full and quick runs.

    Attributes:
        name: Its name in ``--only`` and in the results file.
        full: Arguments of the full run (besides ``--json-out``).
        quick: Arguments of the quick run.
        images: It draws pictures and takes ``--img-dir`` (a quick run draws
            into a temporary directory, never into docs/img).
    """

    name: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    images: bool = False

    @property
    def module(self) -> str:
        return f"benchmarks.{self.name}"


# In the order of docs/benchmarks.md.
BENCHMARKS = (
    Benchmark("throughput", ("--rounds", "3"), ("--tasks", "300", "--rounds", "1")),
    Benchmark(
        "io_bound",
        ("--rounds", "3"),
        ("--shapes", "1x8", "--strategies", "priority", "--waves", "5", "--rounds", "1"),
    ),
    Benchmark(
        "scaling",
        ("--rounds", "3"),
        ("--workers", "1,2", "--waves", "4", "--rounds", "1"),
        images=True,
    ),
    Benchmark(
        "ceiling",
        ("--rounds", "3"),
        ("--tasks", "2000", "--rounds", "1", "--strategies", "fifo,load_balance"),
    ),
    Benchmark("memory", (), ("--sizes", "10000", "--plain-max", "2000")),
    Benchmark("mirror_bytes", (), ("--tasks", "2000", "--strategies", "priority,sjf")),
    Benchmark(
        "simulator_speed", ("--rounds", "3"), ("--tasks", "5000", "--strategies", "fifo,sjf")
    ),
    Benchmark(
        "decision_cost", ("--decisions", "5000"), ("--sizes", "1000,10000", "--decisions", "300")
    ),
    Benchmark("strategy_plot", (), ("--tasks", "300"), images=True),
    Benchmark("adaptive_sweep", (), ("--tasks", "300", "--seeds", "1")),
    Benchmark(
        "cache",
        ("--samples", "200", "--tasks", "20000", "--rounds", "5"),
        ("--samples", "20", "--tasks", "2000", "--rounds", "1"),
    ),
    Benchmark(
        "monitoring", ("--tasks", "5000", "--rounds", "5"), ("--tasks", "3000", "--rounds", "1")
    ),
    Benchmark("outbox", ("--rounds", "15"), ("--calls", "2000", "--rounds", "1")),
    Benchmark("chaos", ("--runs", "3"), ("--runs", "1")),
    Benchmark(
        "backpressure",
        ("--tasks", "5000", "--rounds", "7"),
        ("--tasks", "300", "--rounds", "1"),
    ),
)
NAMES = tuple(b.name for b in BENCHMARKS)


def select(only: str | None) -> list[Benchmark]:
    """The benchmarks named in ``only`` (comma-separated), or all of them."""
    if not only:
        return list(BENCHMARKS)
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in NAMES]
    if unknown:
        raise SystemExit(f"--only: unknown benchmark(s) {unknown}; known: {', '.join(NAMES)}")
    return [b for b in BENCHMARKS if b.name in wanted]


def run_one(bench: Benchmark, quick: bool, work: Path) -> dict[str, Any]:
    """Run one benchmark module as a child process; its JSON, or what went wrong."""
    out = work / f"{bench.name}.json"
    args = [*(bench.quick if quick else bench.full), "--json-out", str(out)]
    if bench.images and quick:
        args += ["--img-dir", str(work / "img")]
    cmd = [sys.executable, "-m", bench.module, *args]
    progress(f"== {bench.name}: {' '.join(cmd[1:])}")
    started = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = round(time.perf_counter() - started, 1)
    sys.stderr.write(done.stderr[-4000:] if done.returncode else "")
    if done.returncode != 0 or not out.exists():
        progress(f"== {bench.name} FAILED (exit {done.returncode}) after {seconds} s")
        return {
            "benchmark": bench.name,
            "error": f"exit code {done.returncode}",
            "stderr_tail": done.stderr[-2000:],
            "runner_seconds": seconds,
        }
    result: dict[str, Any] = json.loads(out.read_text())
    result.setdefault("benchmark", bench.name)
    result["runner_seconds"] = seconds
    progress(f"== {bench.name} done in {seconds} s")
    return result


def run_all(
    only: str | None, quick: bool, json_out: Path | None, doc: Path | None, note: str
) -> int:
    """Run the chosen benchmarks, write the results file, regenerate the tables."""
    from benchmarks.tables import DOC, regenerate

    chosen = select(only)
    info = machine()
    code = code_state(("scheduler", "workers", "broker_config"), (".py", ".lua"))
    shown = ["python -m benchmarks all", *(["--quick"] if quick else [])]
    if only:
        shown += ["--only", only]
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ym-bench-all-") as tmp:
        for bench in chosen:
            results[bench.name] = run_one(bench, quick, Path(tmp))
    report = {
        "runner": " ".join(shown),
        "date": today(),
        "quick": quick,
        "note": note,
        "code": code,
        "machine": finish_machine(info),
        "benchmarks": results,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    if json_out is None:
        stem = f"all-{str(code.get('commit', 'tree'))[:7]}" + ("-quick" if quick else "")
        folder = Path(tempfile.gettempdir()) if quick else ROOT / "benchmarks" / "results"
        json_out = folder / f"{stem}.json"
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2) + "\n")
    progress(f"results: {json_out} ({report['wall_seconds']} s)")
    target = doc if doc is not None else (None if quick else DOC)
    if target is not None:
        changed = regenerate(target, [json_out], note=note)
        progress(f"tables regenerated in {target}: {', '.join(changed) or 'none'}")
    else:
        progress("a quick run leaves docs/benchmarks.md alone (pass --doc FILE to write tables)")
    failed = [name for name, r in results.items() if "error" in r]
    if failed:
        progress(f"FAILED: {', '.join(failed)}")
        return 1
    return 0
