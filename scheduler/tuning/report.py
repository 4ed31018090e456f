"""The HTML report of one experiment: the objective over trials, parameter importance,
and the current configuration against the candidate, metric by metric.

Plotly, because it writes one self-contained HTML file (its JavaScript
embedded, so the report opens offline and needs no server), its figures are
interactive (hover shows each trial's parameters), and Optuna's own
visualisation module builds the optimisation history with it. Parameter
importance is Optuna's PED-ANOVA evaluator, which needs no scikit-learn
(fANOVA, Optuna's default, does), computed per strategy over that strategy's
trials, since each strategy has its own parameters.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.trial import TrialState

from scheduler.simulator import METRIC_NAMES

MIN_TRIALS = 6  # complete trials of a strategy before its importances mean anything


def write_report(path: Path, record: Mapping[str, Any], study: optuna.Study | None) -> None:
    """Write the report of ``record`` (and its study's trials, when there are any) to ``path``."""
    figures: list[tuple[str, go.Figure | None, str]] = []
    trials = [] if study is None else study.get_trials(states=(TrialState.COMPLETE,))
    if study is not None and trials:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = optuna.visualization.plot_optimization_history(study)
        history.update_layout(title=f"{record['objective']} on the training part, by trial")
        figures.append(("Objective over trials", history, ""))
        for strategy, fig, note in _importances(study, record):
            figures.append((f"Parameter importance: {strategy}", fig, note))
    else:
        figures.append(("Objective over trials", None, "no trials (an external advisor proposed)"))
    figures.append(("Current against candidate", _comparison(record), _table(record)))
    parts = []
    first = True
    for title, fig, note in figures:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if fig is not None:
            parts.append(
                fig.to_html(full_html=False, include_plotlyjs="inline" if first else False)
            )
            first = False
        if note:
            parts.append(note if note.startswith("<table") else f"<p>{html.escape(note)}</p>")
    gate = record["gate"]
    head = (
        f"<h1>yardmaster tune: {html.escape(record['id'])}</h1>"
        f"<p><b>{'Proposed' if gate['proposed'] else 'Not proposed'}.</b> "
        f"{html.escape(gate['reason'])}</p>"
        f"<p>Trace {html.escape(record['trace']['path'])} (sha256 {record['trace']['digest'][:16]}"
        f"..., {record['trace']['tasks']} tasks: {record['trace']['train']} to train on, "
        f"{record['trace']['holdout']} held out), {record['cluster']['workers']} workers x "
        f"{record['cluster']['slots']} slots, baseline from {record['baseline']['source']}.</p>"
    )
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>yardmaster tune</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "td,th{padding:2px 10px;text-align:right}</style></head><body>"
        + head
        + "\n".join(parts)
        + "</body></html>"
    )


def _importances(
    study: optuna.Study, record: Mapping[str, Any]
) -> list[tuple[str, go.Figure | None, str]]:
    out: list[tuple[str, go.Figure | None, str]] = []
    done = study.get_trials(states=(TrialState.COMPLETE,))
    for space in record["space"]:
        strategy = space["strategy"]
        names = [f"{strategy}:{d['setting']}" for d in space["dimensions"]]
        mine = [t for t in done if names and all(n in t.params for n in names)]
        if not names:
            continue
        if len(mine) < MIN_TRIALS:
            out.append((strategy, None, f"{len(mine)} complete trials: too few to say"))
            continue
        try:
            found = get_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(), params=names
            )
        except (ValueError, RuntimeError) as exc:
            out.append((strategy, None, f"not computed: {exc}"))
            continue
        fig = go.Figure(go.Bar(x=list(found.values()), y=list(found), orientation="h"))
        fig.update_layout(height=120 + 30 * len(found), xaxis_title="importance (PED-ANOVA)")
        out.append((strategy, fig, f"over {len(mine)} complete trials of {strategy}"))
    return out


def _comparison(record: Mapping[str, Any]) -> go.Figure:
    base, best = record["baseline"]["metrics"], record["best"]["metrics"]
    names, ratios, text = [], [], []
    for name in METRIC_NAMES:
        b, c = base.get(name), best.get(name)
        if name == "tasks" or b is None or c is None:
            continue
        names.append(name)
        ratios.append(c / b if b else (1.0 if c == b else float("nan")))
        text.append(f"{c:.4g} against {b:.4g}")
    fig = go.Figure(go.Bar(x=names, y=ratios, hovertext=text))
    fig.add_hline(y=1.0, line_dash="dot")
    fig.update_layout(yaxis_title="candidate / current (held-out part)")
    return fig


def _table(record: Mapping[str, Any]) -> str:
    base, best = record["baseline"]["metrics"], record["best"]["metrics"]
    rows = "".join(
        f"<tr><th>{name}</th><td>{_fmt(base.get(name))}</td><td>{_fmt(best.get(name))}</td></tr>"
        for name in METRIC_NAMES
    )
    return (
        "<table><tr><th>metric</th><th>current "
        f"({html.escape(record['baseline']['strategy'])})</th><th>candidate "
        f"({html.escape(record['best']['strategy'])})</th></tr>{rows}</table>"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
