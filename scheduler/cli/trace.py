"""``yardmaster trace export``: the workload file of what really ran, for simulate and tune."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.cli.connect import open_store
from scheduler.errors import InvalidInputError

console = Console(stderr=True, soft_wrap=True)
trace_app = typer.Typer(
    name="trace",
    help="Traces of live traffic, in the workload format (docs/tuning.md).",
    no_args_is_help=True,
)
app.add_typer(trace_app)

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
WHEN = "a span ago such as 90s, 30m, 1h or 2d, UNIX seconds, or an ISO time (2026-05-01T12:00)"


def parse_when(option: str, text: str, now: float) -> float:
    """A point in time: ``text`` ago (``30m``), UNIX seconds, or an ISO 8601 local time.

    Raises:
        InvalidInputError: Naming ``option``, the text and the forms allowed.
    """
    span = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if span:
        return now - float(span.group(1)) * UNITS[span.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidInputError(option, text, WHEN) from None


@trace_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The workload file to write.")],
    since: Annotated[str, typer.Option(help=f"Tasks submitted from ({WHEN}).")] = "1h",
    until: Annotated[str | None, typer.Option(help="Tasks submitted up to (default: now).")] = (
        None
    ),
) -> None:
    """Write the workload file of the tasks submitted in a time range that ended."""
    from scheduler.tuning.capture import export_trace

    store = open_store(check=True)
    now = store.server_time()
    start = parse_when("--since", since, now)
    end = now if until is None else parse_when("--until", until, now)
    if end < start:
        raise InvalidInputError("--until", until, f"a time after --since ({since})")
    trace = export_trace(store, since=start, until=end)
    if not trace.tasks:
        raise InvalidInputError(
            "--since", since, "a range in which tasks were submitted and ended",
            problem="no task submitted in that range has ended",
        )  # fmt: skip
    trace.write(out)
    left = ", ".join(f"{n} {why}" for why, n in sorted(trace.left_out.items()))
    console.print(
        f"wrote {len(trace.tasks)} tasks to {out}"
        + (f" (left out: {left})" if left else "")
        + f"; dispatch overhead {trace.overhead * 1000:.1f} ms (simulate's --dispatch-overhead)",
        highlight=False,
    )
    for text in trace.warnings:
        console.print(f"[yellow]warning:[/] {text}", highlight=False)
