"""The experiment record: every tune run, kept in the study storage beside its trials.

An experiment is an Optuna study (its name is the experiment's id); the
record is the study's ``experiment`` attribute, a JSON object: the trace
(path, SHA-256 digest, task counts, the cut), the cluster shape, the
objective, the search spaces, the trials (asked, complete, pruned, failed),
the baseline (with where it came from: the settings, or the live
configuration's version in Redis), the best candidate, the improvement and
the gate's verdict, the advisor's answers by class, and the yardmaster
version. Each invocation on the study (a resumed one included) is appended
to the study's ``runs`` attribute. So ``yardmaster tune history`` needs only
the storage, no Redis, and a rollout can later find a candidate by its id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna

from scheduler.tuning.search import storage_for

RECORD = "experiment"
RUNS = "runs"


def now() -> str:
    """The current time in ISO 8601, UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def version() -> str:
    """The installed yardmaster's version."""
    try:
        return metadata.version("yardmaster")
    except metadata.PackageNotFoundError:
        return "unknown"


def begin(study: optuna.Study, record: Mapping[str, Any]) -> None:
    """Record a run as started (``status: running``), so a run killed midway is still listed."""
    runs = list(study.user_attrs.get(RUNS, []))
    runs.append({"started": record["started"], "finished": None, "status": "running"})
    previous = study.user_attrs.get(RECORD)
    if previous is None or previous.get("status") == "running":
        study.set_user_attr(RECORD, {**record, "status": "running"})
    study.set_user_attr(RUNS, runs)


def save(study: optuna.Study, record: Mapping[str, Any], run: Mapping[str, Any]) -> None:
    """Store ``record`` as the study's experiment and close the latest run with ``run``."""
    runs = list(study.user_attrs.get(RUNS, []))
    if runs and runs[-1].get("status") == "running":
        runs[-1] = {**runs[-1], **run, "status": "finished"}
    else:
        runs.append({**run, "status": "finished"})
    study.set_user_attr(RECORD, {**record, "status": "finished"})
    study.set_user_attr(RUNS, runs)


def history(storage: str) -> list[dict[str, Any]]:
    """Every recorded experiment in ``storage``, oldest first (none when it does not exist)."""
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    summaries = optuna.get_all_study_summaries(storage_for(storage), include_best_trial=False)
    out = []
    for summary in summaries:
        record = summary.user_attrs.get(RECORD)
        if record is None:
            continue  # a study of someone else's, or a run killed before its first record
        out.append({**record, RUNS: summary.user_attrs.get(RUNS, []), "n_trials": summary.n_trials})
    return sorted(out, key=lambda r: str(r.get("started", "")))


def load(storage: str, study: str) -> dict[str, Any] | None:
    """One experiment's record by its id (the study name); None when there is none."""
    return next((r for r in history(storage) if r.get("id") == study), None)
