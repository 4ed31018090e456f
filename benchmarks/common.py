"""What the strategy and simulator benchmarks share: the tree they measure, and how they report.

Each script prints one JSON object to stdout (and to ``--json-out``) and its
progress to stderr. The object records the machine and the code measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
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
    """One progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


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


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
    }


def emit(result: dict[str, Any], json_out: Path | None) -> None:
    """Print the result as JSON on stdout, and write it to ``json_out`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n")
