"""``yardmaster tune WORKLOAD`` and ``yardmaster tune history``: search, gate, record.

The baseline is what runs today: the live configuration when ``YM_REDIS_URL``
names a Redis (its latest steered version, or ``YM_STRATEGY`` when never
steered), else the settings (``YM_*`` values, or the defaults). Experiments
are kept in ``--storage``; ``history`` reads them from there, with no Redis.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from scheduler.cli.base import app, err, finish
from scheduler.errors import InvalidInputError
from scheduler.searchable import Searchable
from scheduler.settings import STRATEGY_NAMES, Settings, load_settings
from scheduler.tuning.objectives import OBJECTIVES
from scheduler.tuning.rules import current_config


@app.command()
def tune(
    ctx: typer.Context,
    workload: Annotated[
        str, typer.Argument(help="Workload file (JSON Lines), or 'history' to list runs.")
    ],
    workers: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="Simulated workers (required).")
    ] = None,
    slots: Annotated[int, typer.Option(min=1, max=512, help="Slots per worker.")] = 1,
    objective: Annotated[str, typer.Option(help="One of: " + ", ".join(OBJECTIVES) + ".")] = (
        "misses_then_flow"
    ),
    strategies: Annotated[
        str, typer.Option(help="Comma-separated strategies to search (default: all).")
    ] = ",".join(STRATEGY_NAMES),
    trials: Annotated[int, typer.Option(min=1, help="Trials the study should reach.")] = 100,
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Search processes.")] = 1,
    storage: Annotated[
        str | None, typer.Option(help="Study database URL (default YM_TUNE_STORAGE).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampler and resampling seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the experiment record.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: from the trace and options).")
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option(help="Narrow a dimension: NAME=LOW..HIGH, NAME=A,B or NAME=VALUE."),
    ] = None,
    advisor: Annotated[
        str, typer.Option(help="'search', or an http(s) URL that answers proposals.")
    ] = "search",
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Make a proposed candidate the live strategy, a version carrying the "
            "experiment's id, in a guarded rollout (ema_alpha and affinity_step are kept at "
            "the cluster's values so the candidate can be applied).",
        ),
    ] = False,
    window: Annotated[
        float | None,
        typer.Option(min=1.0, help="Seconds the guard watches (default YM_ROLLOUT_WINDOW)."),
    ] = None,
) -> None:
    """Search strategy settings on a trace in the simulator; propose only what beats today's."""
    settings = load_settings()
    url = storage or settings.tune_storage
    if workload == "history" and not Path(workload).is_file():
        _history(url, as_json)
        return
    from scheduler.tuning.advisors import HttpAdvisor
    from scheduler.tuning.session import TuneOptions
    from scheduler.tuning.session import tune as run_tune
    from scheduler.tuning.space import parse_override

    path = Path(workload)
    if not path.is_file():
        raise InvalidInputError("WORKLOAD", workload, "a workload file, or 'history'")
    if workers is None:
        raise InvalidInputError("--workers", None, "an integer from 1 (the cluster to simulate)")
    overrides: dict[str, Searchable] = dict(parse_override(text) for text in space or [])
    searched = tuple(s.strip() for s in strategies.split(",") if s.strip())
    if apply:
        from scheduler.tuning.steering import fixed_learning

        overrides = fixed_learning(overrides, searched, settings)
    options = TuneOptions(
        trace=path,
        workers=workers,
        slots=slots,
        objective=objective,
        strategies=searched,
        trials=trials,
        jobs=jobs,
        storage=url,
        seed=seed,
        study=study,
        overrides=overrides,
        advisor=None if advisor == "search" else HttpAdvisor(advisor, settings.advisor_timeout),
    )
    baseline = live_baseline(settings, cluster=apply)
    warn = lambda text: err().print(f"[yellow]warning:[/] {text}", highlight=False)  # noqa: E731
    with _progress(trials, enabled=sys.stderr.isatty()) as on_progress:
        record = run_tune(options, baseline, settings, on_progress=on_progress, warn=warn)
    if report is not None:
        _write_report(report, record, url)
    applied = _apply(record, settings, window) if apply else None
    if as_json:
        typer.echo(json.dumps({**record, **({"applied": applied} if apply else {})}, indent=2))
    else:
        _print(record, report)
        if apply:
            _print_applied(applied)
    finish(ctx)


def live_baseline(settings: Settings, *, cluster: bool = False) -> Any:
    """The configuration that runs today (see the module docstring); ``cluster``: read it
    from the running cluster even without ``YM_REDIS_URL`` (the embedded Redis of
    ``yardmaster up``), as ``--apply`` must."""
    from scheduler.tuning.session import Baseline

    if settings.redis_url is None and not cluster:
        return Baseline(current_config(settings.strategy, settings), "settings", None)
    from scheduler.cli.connect import open_store
    from scheduler.tuning.steering import live_config

    config, version = live_config(open_store(settings), settings)
    return Baseline(config, "redis", version)


def _apply(record: dict[str, Any], settings: Settings, window: float | None) -> Any:
    """Apply a proposed candidate (guarded); the version's JSON, or None when not proposed."""
    if not record["gate"]["proposed"]:
        return None
    from scheduler.cli.connect import open_client
    from scheduler.tuning.steering import apply, unwatched_warning

    client = open_client(settings)
    version = apply(client, record, guard=window or settings.rollout_window)
    if (warning := unwatched_warning(client.store)) is not None:
        typer.echo(warning, err=True)
    return version.as_dict()


def _print_applied(applied: Any) -> None:
    from rich.console import Console

    console = Console()
    if applied is None:
        console.print("--apply: nothing applied (the gate proposed nothing)", highlight=False)
        return
    guard = applied["guard"]
    console.print(
        f"applied as strategy version {applied['version']} (experiment {applied['experiment']}); "
        f"`yardmaster monitor` guards it for {guard['window']:g}s and rolls back to version "
        f"{guard['previous']['version']} if it regresses",
        highlight=False,
    )


class _progress:  # noqa: N801  (used as a function in a with statement)
    """A rich progress bar on stderr, or nothing when stderr is not a terminal."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.bar = Progress(
            "trials", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err()
        )
        task = self.bar.add_task("trials", total=self.total)
        self.bar.start()
        return lambda done: self.bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _write_report(path: Path, record: dict[str, Any], url: str) -> None:
    import optuna

    from scheduler.tuning.report import write_report
    from scheduler.tuning.search import storage_for

    study = optuna.load_study(study_name=record["study"], storage=storage_for(url))
    write_report(path, record, study)


def _print(record: dict[str, Any], report: Path | None) -> None:
    from rich.console import Console

    console = Console()
    gate, base, best = record["gate"], record["baseline"], record["best"]
    console.print(
        f"experiment {record['id']} ({record['trials']['complete']} complete, "
        f"{record['trials']['pruned']} pruned trials; storage {record['storage']})",
        highlight=False,
    )
    console.print(
        f"baseline ({base['source']}): {base['strategy']} {json.dumps(base['params'])}: "
        f"{record['objective']} {base['holdout']:.4g} on the held-out part",
        highlight=False,
    )
    console.print(
        f"best: {best['strategy']} {json.dumps(best['params'])}: "
        f"{record['objective']} {best['holdout']:.4g}",
        highlight=False,
    )
    console.print(
        ("[bold green]" if gate["proposed"] else "[bold]") + gate["reason"], highlight=False
    )
    if report is not None:
        console.print(f"report: {report}", highlight=False)


def _history(url: str, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from scheduler.tuning.experiments import history

    records = history(url)
    if as_json:
        for record in records:
            typer.echo(json.dumps(record))
        return
    console = Console()
    if not records:
        console.print(f"no tune runs recorded in {url}", highlight=False)
        return
    table = Table(title=f"tune runs in {url}")
    for column in ("id", "finished", "trace", "objective", "trials", "best", "improvement", "gate"):
        table.add_column(column, overflow="fold")
    for r in records:
        trace = f"{Path(r['trace']['path']).name} ({r['trace']['digest'][:8]})"
        if r.get("status") == "running":  # killed (or still running) before its first end
            trials = str(r.get("n_trials", 0))
            table.add_row(r["id"], "-", trace, r["objective"], trials, "-", "-", "unfinished")
            continue
        imp = r["improvement"]
        low, high = imp["interval"]
        table.add_row(
            r["id"],
            r["finished"],
            trace,
            r["objective"],
            str(r["trials"]["complete"] + r["trials"]["pruned"]),
            r["best"]["strategy"],
            f"{imp['value']:+.1%} [{low:+.1%}, {high:+.1%}]",
            "proposed" if r["gate"]["proposed"] else "not proposed",
        )
    console.print(table)
