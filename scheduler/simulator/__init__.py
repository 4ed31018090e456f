"""A discrete-event simulator that drives the live strategies on a workload file."""

from __future__ import annotations

from scheduler.simulator.engine import Outcome, SimulatedTask, Simulator
from scheduler.simulator.metrics import (
    METRIC_NAMES,
    WORKFLOW_METRIC_NAMES,
    metrics,
    outcome_metrics,
)

__all__ = [
    "METRIC_NAMES",
    "WORKFLOW_METRIC_NAMES",
    "Outcome",
    "SimulatedTask",
    "Simulator",
    "metrics",
    "outcome_metrics",
]
