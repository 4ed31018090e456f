"""Scheduling strategies: one interface, one registry.

``adaptive`` composes the others with the simulator, so it lives above this
package (:mod:`scheduler.adaptive`); build any strategy by name with
:func:`scheduler.adaptive.build_strategy`.
"""

from __future__ import annotations

from scheduler.errors import InvalidInputError
from scheduler.settings import STRATEGY_NAMES, Settings
from scheduler.strategies.base import (
    EPOCH,
    HeapQueue,
    IndexedQueue,
    LazyHeapQueue,
    RankQueue,
    Snapshot,
    SortKey,
    Strategy,
    SubmissionQueue,
    Switch,
    TaskQueue,
    plan,
)
from scheduler.strategies.critical_path import CriticalPathStrategy, PathQueue
from scheduler.strategies.edf import EdfStrategy, earliest_finish
from scheduler.strategies.fifo import FifoStrategy
from scheduler.strategies.load_balance import LoadBalanceStrategy
from scheduler.strategies.pool import WorkerKey, WorkerPool, by_load, least, least_loaded
from scheduler.strategies.priority import PriorityStrategy
from scheduler.strategies.sjf import EstimateQueue, SjfStrategy
from scheduler.strategies.weighted import WeightedStrategy

__all__ = [
    "EPOCH",
    "PURE_STRATEGY_NAMES",
    "STRATEGY_NAMES",
    "CriticalPathStrategy",
    "EdfStrategy",
    "EstimateQueue",
    "FifoStrategy",
    "HeapQueue",
    "IndexedQueue",
    "LazyHeapQueue",
    "LoadBalanceStrategy",
    "PathQueue",
    "PriorityStrategy",
    "RankQueue",
    "SjfStrategy",
    "Snapshot",
    "SortKey",
    "Strategy",
    "SubmissionQueue",
    "Switch",
    "TaskQueue",
    "WeightedStrategy",
    "WorkerKey",
    "WorkerPool",
    "by_load",
    "create_strategy",
    "earliest_finish",
    "least",
    "least_loaded",
    "plan",
]

PURE_STRATEGY_NAMES = tuple(name for name in STRATEGY_NAMES if name != "adaptive")


def create_strategy(name: str, settings: Settings) -> Strategy:
    """Build the named pure strategy with its parameters taken from ``settings``.

    Raises:
        InvalidInputError: When ``name`` is not a pure strategy (``adaptive`` is
            built by :func:`scheduler.adaptive.build_strategy`).
    """
    if name == "fifo":
        return FifoStrategy()
    if name == "priority":
        return PriorityStrategy(aging=settings.priority_aging)
    if name == "sjf":
        return SjfStrategy(overrun=settings.sjf_overrun)
    if name == "edf":
        return EdfStrategy(late=settings.edf_late)
    if name == "load_balance":
        return LoadBalanceStrategy(
            affinity_weight=settings.affinity_weight,
            affinity_wait=settings.affinity_wait,
            affinity_balance=settings.affinity_balance,
            warm_capacity=settings.warm_capacity,
        )
    if name == "weighted":
        return WeightedStrategy(
            settings.weights,
            default_duration=settings.default_duration,
            affinity_wait=settings.affinity_wait,
            affinity_balance=settings.affinity_balance,
            warm_capacity=settings.warm_capacity,
        )
    if name == "critical_path":
        return CriticalPathStrategy()
    raise InvalidInputError("strategy", name, "one of: " + ", ".join(PURE_STRATEGY_NAMES))
