"""``yardmaster strategy show|set|history|rollback``: live steering of the dispatcher."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scheduler.cli.base import app
from scheduler.cli.connect import open_store
from scheduler.client import Client
from scheduler.errors import InvalidInputError
from scheduler.settings import STRATEGY_PARAMS, load_settings
from scheduler.strategy_config import StrategyVersion

console = Console()
strategy_app = typer.Typer(
    help="Show or change the live strategy; every change is a version that can be rolled back.",
    no_args_is_help=True,
)
app.add_typer(strategy_app, name="strategy")


WaitOption = Annotated[
    float, typer.Option(min=0.0, help="Seconds to wait for the dispatcher to apply it (0: don't).")
]
WhoOption = Annotated[str | None, typer.Option(help="Recorded author (default user@host).")]


def _client() -> Client:
    return Client(open_store())


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(
                "--param", pair, "NAME=VALUE, NAME one of: " + ", ".join(STRATEGY_PARAMS)
            )
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text  # a bare word such as expire
    return params


def _print_version(config: StrategyVersion, title: str) -> None:
    params = json.dumps(config.params, sort_keys=True) if config.params else "(cluster settings)"
    console.print(
        f"{title}: version {config.version}: [bold]{config.strategy}[/] {params}\n"
        f"  set by {config.who} at {_when(config.at)}"
        + (f"; experiment {config.experiment}" if config.experiment else "")
        + (f"; {config.note}" if config.note else ""),
        highlight=False,
    )


def _report(client: Client, config: StrategyVersion, title: str, wait: float) -> None:
    """Print the stored version; then wait (unless 0) until the dispatcher applied it."""
    _print_version(config, title)
    if wait > 0:
        active = client.wait_strategy_active(config.version, wait)
        console.print(f"applied by dispatcher {active.dispatcher}", highlight=False)


@strategy_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The configured strategy, what the dispatcher runs, and recent adaptive switches."""
    client = _client()
    config = client.strategy()
    active = client.active_strategy()
    switches = client.store.strategy.recent_switches(5)
    if as_json:
        out = {
            "configured": None if config is None else config.as_dict(),
            "active": None
            if active is None
            else {"strategy": active.strategy, "version": active.version, "since": active.since},
            "switches": switches,
            "switch_count": client.store.events.counters().get("strategy_switches", 0),
        }
        typer.echo(json.dumps(out, indent=2))
        return
    if config is None:
        console.print(
            f"not steered: the dispatcher uses YM_STRATEGY ({load_settings().strategy})",
            highlight=False,
        )
    else:
        _print_version(config, "configured")
    if active is None:
        console.print("active: no dispatcher has led yet")
    else:
        console.print(
            f"active: [bold]{active.strategy}[/] (version {active.version}, since "
            f"{_when(active.since)}, dispatcher {active.dispatcher})",
            highlight=False,
        )
    for sw in switches:
        console.print(
            f"  switch at {_when(sw['at'])}: {sw['from']} -> {sw['to']} ({sw['reason']})",
            highlight=False,
        )


GuardOption = Annotated[
    bool | None,
    typer.Option(
        "--guard/--no-guard",
        help="Watch the live metrics after the switch and roll back by itself if they regress "
        "(default: on with --from-experiment, off otherwise).",
    ),
]
WindowOption = Annotated[
    float | None,
    typer.Option(min=1.0, help="Seconds the guard watches (default YM_ROLLOUT_WINDOW)."),
]


@strategy_app.command("set")
def set_(
    name: Annotated[
        str | None, typer.Argument(help="The strategy to run (not with --from-experiment).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="NAME=VALUE (VALUE as JSON, or a bare word), e.g. priority_aging=0.5; repeatable.",
        ),
    ] = None,
    who: WhoOption = None,
    note: Annotated[str, typer.Option(help="Free text kept with the version.")] = "",
    wait: WaitOption = 10.0,
    from_experiment: Annotated[
        str | None,
        typer.Option(help="Apply the candidate of this tune experiment (see `tune history`)."),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Experiment storage (default YM_TUNE_STORAGE).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Apply an experiment's candidate the gate did not propose.")
    ] = False,
    guard: GuardOption = None,
    window: WindowOption = None,
) -> None:
    """Switch the live strategy without a restart; pending tasks are re-ordered at once."""
    client = _client()
    settings = client.store.settings
    watch = (
        (window or settings.rollout_window)
        if (guard or (guard is None and from_experiment))
        else None
    )
    if from_experiment is None:
        if name is None:
            raise InvalidInputError("NAME", None, "a strategy name, or --from-experiment ID")
        config = client.set_strategy(
            name, _parse_params(param or []), who=who, note=note, guard=watch
        )
    else:
        if name is not None or param:
            raise InvalidInputError(
                "NAME", name or param, "nothing besides --from-experiment (the experiment "
                "says the strategy and its parameters)",
            )  # fmt: skip
        from scheduler.tuning import experiments
        from scheduler.tuning.steering import apply

        url = storage or settings.tune_storage
        record = experiments.load(url, from_experiment)
        if record is None:
            known = ", ".join(r["id"] for r in experiments.history(url)[-5:]) or "none"
            raise InvalidInputError(
                "--from-experiment", from_experiment, f"an experiment in {url} (latest: {known})"
            )
        config = apply(client, record, guard=watch, who=who, force=force)
    _report(client, config, "set", wait)
    if config.guard is not None:
        console.print(
            f"guarded: `yardmaster monitor` watches it for {config.guard['window']:g}s and rolls "
            f"back to version {config.guard['previous']['version']} if it regresses",
            highlight=False,
        )
        from scheduler.tuning.steering import unwatched_warning

        if (warning := unwatched_warning(client.store)) is not None:
            typer.echo(warning, err=True)


@strategy_app.command("history")
def history(
    limit: Annotated[int, typer.Option(min=0, help="Show the last N versions (0: all).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Every version: who set what, when."""
    versions = _client().strategy_history(limit)
    if as_json:
        for v in versions:
            typer.echo(json.dumps(v.as_dict()))
        return
    table = Table(title="strategy versions")
    for column in ("version", "strategy", "params", "who", "at", "experiment", "note"):
        table.add_column(column, overflow="fold")
    for v in versions:
        params = json.dumps(v.params, sort_keys=True) if v.params else ""
        guarded = f"guarded {v.guard['window']:g}s; " if v.guard else ""
        table.add_row(
            str(v.version), v.strategy, params, v.who, _when(v.at), v.experiment, guarded + v.note
        )
    console.print(table)
    rollout = _client().store.strategy.rollout()
    if rollout is not None:
        console.print(
            f"rollout of version {rollout['version']}: {rollout['state']} ({rollout['reason']})",
            highlight=False,
        )


@strategy_app.command("rollback")
def rollback(
    to: Annotated[
        int | None, typer.Option(help="Version to restore (default: the one before the current).")
    ] = None,
    who: WhoOption = None,
    wait: WaitOption = 10.0,
) -> None:
    """Restore an earlier version; the restore is itself a new version."""
    client = _client()
    config = client.rollback_strategy(to, who=who)
    _report(client, config, "restored", wait)
