"""A discrete-event simulator that drives the live strategies on a workload file."""

from __future__ import annotations

from scheduler.simulator.engine import SimulatedTask, Simulator
from scheduler.simulator.metrics import METRIC_NAMES, metrics

__all__ = ["METRIC_NAMES", "SimulatedTask", "Simulator", "metrics"]
