"""``yardmaster run``: replay a workload on the live cluster, optionally against the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scheduler import replay as rp
from scheduler.cli.base import app, err
from scheduler.cli.connect import open_client
from scheduler.settings import load_settings
from scheduler.simulator import METRIC_NAMES, metrics
from scheduler.workload import load_workload

console = Console()


@app.command(name="run")
def run_workload(
    workload: Annotated[
        Path, typer.Argument(help="Workload file (JSON Lines).", exists=True, dir_okay=False)
    ],
    strategy: Annotated[str, typer.Option(help="The live strategy during the replay.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    compare_sim: Annotated[
        bool, typer.Option("--compare-sim", help="Also simulate it on the same cluster shape.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0.0, help="Give up after this many seconds.")
    ] = None,
    trace: Annotated[Path | None, typer.Option(help="Write one JSON line per task here.")] = None,
    dispatch_overhead: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="With --compare-sim: the simulator's per-task overhead in seconds "
            "(default: the one measured in this run).",
        ),
    ] = None,
) -> None:
    """Replay the workload with the sleep task on the live cluster and report its metrics."""
    rp.check_strategy(strategy, "--strategy")
    settings = load_settings()
    tasks = load_workload(workload)
    client = open_client(settings)

    def progress(p: rp.Progress) -> None:
        err().print(
            f"run: {p.elapsed:6.1f}s  submitted {p.submitted}/{p.total}  finished {p.finished}",
            highlight=False,
        )

    with rp.strategy_in_force(client, strategy):
        result = rp.replay(client, tasks, strategy, timeout=timeout, on_progress=progress)
    if result.late:
        shown = ", ".join(result.late[:10]) + (" ..." if len(result.late) > 10 else "")
        err().print(
            f"[yellow]warning:[/] {len(result.late)} rows not submitted: their deadline had "
            f"passed before they were due or released ({shown}); counted as expired",
            highlight=False,
        )
    report: dict[str, Any] = {"run": result.metrics()}
    if compare_sim:
        overhead = result.overhead if dispatch_overhead is None else dispatch_overhead
        predicted = rp.simulate(
            tasks,
            strategy,
            settings,
            workers=result.workers,
            slots=result.slots,
            dispatch_overhead=overhead,
        )
        report["simulate"] = metrics(predicted, result.workers * result.slots)
        report["difference"] = rp.difference(report["run"], report["simulate"])
        report["dispatch_overhead"] = overhead
    if trace is not None:
        lines = [json.dumps(row) for row in rp.trace_rows(result.records)]
        trace.write_text("\n".join(lines) + "\n")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    title = f"{workload.name}: {len(tasks)} tasks, {strategy}, "
    title += f"{result.workers} workers x {result.slots} slots"
    table = Table(title=title)
    table.add_column("metric")
    columns = [c for c in ("run", "simulate", "difference") if c in report]
    for column in columns:
        table.add_column(column, justify="right")
    for name in METRIC_NAMES:
        table.add_row(name, *(_cell(report[column][name]) for column in columns))
    console.print(table)
    if compare_sim:
        console.print(f"simulated with a per-task overhead of {report['dispatch_overhead']:.4f}s")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
