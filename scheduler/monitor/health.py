"""The health score: four component scores, a weighted mean, and a status word.

Components, each 0..100 (see docs/observability.md for the formula):

- ``prediction``: how close run times came to the EMAs they were scheduled by;
- ``adherence``: the share of tasks with a deadline that met it;
- ``efficiency``: while work waits, the share of slots busy;
- ``stability``: what the active anomalies and the failure rate leave.

The score is their weighted mean. The status is ``healthy`` (>= 80),
``degraded`` (>= 50) or ``unhealthy``; a critical anomaly, no registered
worker or no active dispatcher makes it ``unhealthy`` whatever the score, and
a warning caps it at ``degraded``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scheduler.monitor.anomalies import Anomaly

WEIGHTS = {"prediction": 0.2, "adherence": 0.3, "efficiency": 0.2, "stability": 0.3}
PENALTY = {"critical": 40.0, "warning": 15.0, "info": 5.0}
HEALTHY_AT = 80.0
DEGRADED_AT = 50.0


def _clamp(value: float) -> float:
    return max(0.0, min(100.0, value))


def health(
    *,
    prediction_error: float | None,
    deadline_miss_ratio: float,
    backlog: int,
    slots: int,
    busy: int,
    failure_ratio: float,
    anomalies: Sequence[Anomaly],
    workers: int,
    leader: bool,
) -> dict[str, Any]:
    """Score the cluster. Returns ``score``, ``status``, ``components`` and ``reasons``."""
    components = {
        "prediction": 100.0 if prediction_error is None else _clamp(100 * (1 - prediction_error)),
        "adherence": _clamp(100 * (1 - deadline_miss_ratio)),
        "efficiency": 100.0 if backlog == 0 else (_clamp(100 * busy / slots) if slots else 0.0),
        "stability": _clamp(100 - sum(PENALTY[a.severity] for a in anomalies) - 50 * failure_ratio),
    }
    score = sum(WEIGHTS[name] * value for name, value in components.items())
    reasons: list[str] = []
    status = (
        "healthy" if score >= HEALTHY_AT else "degraded" if score >= DEGRADED_AT else "unhealthy"
    )
    if status != "healthy":
        low = min(components, key=lambda k: components[k])
        reasons.append(f"score {score:.0f}: lowest component {low} at {components[low]:.0f}")
    if workers == 0:
        reasons.append("no worker is registered")
    if not leader:
        reasons.append("no dispatcher holds the lease")
    critical = [a for a in anomalies if a.severity == "critical"]
    warnings = [a for a in anomalies if a.severity == "warning"]
    reasons += [f"{a.type}: {a.reason}" for a in critical + warnings]
    if critical or workers == 0 or not leader:
        status = "unhealthy"
        score = min(score, DEGRADED_AT - 1)
    elif warnings and status == "healthy":
        status = "degraded"
        score = min(score, HEALTHY_AT - 1)
    return {
        "score": round(score, 1),
        "status": status,
        "components": {name: round(value, 1) for name, value in components.items()},
        "reasons": reasons,
    }
