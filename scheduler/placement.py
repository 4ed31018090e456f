"""Placement: what a worker offers (capacities, labels, task names) and what a task needs.

Plain data and pure checks, below the strategies (layer 1): parsing and
validating the text forms (``gpu=2,mem=16G``, ``zone=eu``), the compact
requirement a pending task carries (:class:`Needs`), and whether a worker can
run a task now (:func:`fits`) or could ever run it (:func:`never_reason`).

Amounts are plain non-negative numbers; a suffix K, M, G or T multiplies by
1024, 1024², 1024³ or 1024⁴ (for memory-like amounts: ``mem=16G`` is
17179869184). Resource names and label keys are 1 to 64 letters, digits,
``_``, ``-`` or ``.``; label values the same characters plus ``/`` and ``:``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from scheduler.errors import InvalidInputError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_.:@/-]{1,200}$")
_AMOUNT = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGT]?)$")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
NAME_RULE = "1 to 64 letters, digits, '_', '-' or '.'"
VALUE_RULE = "1 to 128 letters, digits, '_', '-', '.', ':' or '/'"
QUEUE_RULE = "1 to 200 letters, digits, '_', '-', '.', ':', '@' or '/'"
AMOUNT_RULE = "a non-negative number, optionally with a suffix K, M, G or T (powers of 1024)"


class Needs(msgspec.Struct, frozen=True, gc=False):
    """A task's placement requirements (a pending task without any carries None).

    Attributes:
        resources: Amount of each resource held while the task runs on its worker.
        labels: Labels its worker must carry, each with exactly this value.
        queue: The Celery queue its worker must consume (``queue=``, ``task_routes``).
        prefer: Labels a worker should carry (soft: among the workers that can take
            the task, those carrying them are chosen first; the task never waits
            for them).
    """

    resources: dict[str, float] | None = None
    labels: dict[str, str] | None = None
    queue: str | None = None
    prefer: dict[str, str] | None = None


def amount(field: str, value: Any) -> float:
    """One resource amount from a number or its text form (``4``, ``0.5``, ``16G``).

    Raises:
        InvalidInputError: naming ``field`` when the amount is malformed or negative.
    """
    if isinstance(value, bool):
        raise InvalidInputError(field, value, AMOUNT_RULE)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidInputError(field, value, AMOUNT_RULE)
        return float(value)
    if isinstance(value, str):
        match = _AMOUNT.match(value.strip())
        if match is None:
            raise InvalidInputError(field, value, AMOUNT_RULE)
        return float(match.group(1)) * _UNITS[match.group(2)]
    raise InvalidInputError(field, value, AMOUNT_RULE)


def resources(field: str, value: Mapping[str, Any] | str | None) -> dict[str, float]:
    """Validated resources from a mapping or the text ``gpu=2,mem=16G`` ('' or None: none).

    Raises:
        InvalidInputError: naming the field (``field.<name>`` for one amount) and the value.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        pairs: dict[str, Any] = {}
        for part in value.split(","):
            name, eq, text = part.strip().partition("=")
            if not eq or not name.strip():
                raise InvalidInputError(field, value, "name=amount pairs separated by commas")
            pairs[name.strip()] = text.strip()
        value = pairs
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, value, "a mapping of resource name to amount")
    out: dict[str, float] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInputError(f"{field} name", name, NAME_RULE)
        out[name] = amount(f"{field}.{name}", raw)
    return out


def labels(field: str, value: Mapping[str, Any] | Iterable[str] | str | None) -> dict[str, str]:
    """Validated labels from a mapping, ``key=value`` texts, or one text of them
    separated by commas ('' or None: none).

    Raises:
        InvalidInputError: naming the field and the bad key or value.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, Mapping | list | tuple):
        raise InvalidInputError(field, value, "a mapping of label key to value")
    if not isinstance(value, Mapping):
        pairs: dict[str, Any] = {}
        for item in value:
            key, eq, text = str(item).strip().partition("=")
            if not eq:
                raise InvalidInputError(field, item, "key=value")
            pairs[key.strip()] = text.strip()
        value = pairs
    out: dict[str, str] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not _NAME.match(key):
            raise InvalidInputError(f"{field} key", key, NAME_RULE)
        if not isinstance(raw, str) or not _VALUE.match(raw):
            raise InvalidInputError(f"{field}.{key}", raw, VALUE_RULE)
        out[key] = raw
    return out


def queue(field: str, value: Any) -> str | None:
    """A validated Celery queue name ('' or None: none).

    Raises:
        InvalidInputError: naming ``field`` when the name is not a text of the allowed
            characters.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _QUEUE.match(value):
        raise InvalidInputError(field, value, QUEUE_RULE)
    return value


def queues(field: str, value: Iterable[str] | str | None) -> list[str]:
    """Validated queue names from a list or one text of them separated by commas
    (``-Q q1,q2``), sorted, without repeats ('' or None: none).

    Raises:
        InvalidInputError: naming ``field`` and the bad name.
    """
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    out: set[str] = set()
    for item in items:
        name = queue(field, item.strip() if isinstance(item, str) else item)
        if name is None:
            raise InvalidInputError(field, value, f"queue names separated by commas: {QUEUE_RULE}")
        out.add(name)
    return sorted(out)


def needs(
    resource_map: Mapping[str, float] | None,
    label_map: Mapping[str, str] | None,
    queue_name: str | None = None,
    prefer_map: Mapping[str, str] | None = None,
) -> Needs | None:
    """The compact requirement: None when there is none (a zero amount is no requirement)."""
    res = {k: v for k, v in (resource_map or {}).items() if v > 0} or None
    lab = dict(label_map) if label_map else None
    pref = dict(prefer_map) if prefer_map else None
    if res is None and lab is None and not queue_name and pref is None:
        return None
    return Needs(res, lab, queue_name or None, pref)


def to_json(value: Mapping[str, Any] | None) -> str:
    """The stored form of resources or labels: compact JSON, '' for none."""
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True) if value else ""


def from_json(text: str | None) -> dict[str, Any]:
    """The inverse of :func:`to_json` ('' or None: an empty dict)."""
    if not text:
        return {}
    out = json.loads(text)
    return out if isinstance(out, dict) else {}


def fits(
    task_needs: Needs | None,
    worker_labels: Mapping[str, str] | None,
    free: Mapping[str, float] | None,
    worker_queues: frozenset[str] | None = None,
) -> bool:
    """Whether a worker with ``worker_labels``, ``free`` resources and consuming
    ``worker_queues`` can take the task now (``prefer`` is not a condition)."""
    if task_needs is None:
        return True
    if task_needs.queue is not None and (
        worker_queues is None or task_needs.queue not in worker_queues
    ):
        return False
    if task_needs.labels:
        if not worker_labels:
            return False
        for key, value in task_needs.labels.items():
            if worker_labels.get(key) != value:
                return False
    if task_needs.resources:
        if not free:
            return False
        for name, want in task_needs.resources.items():
            if free.get(name, 0.0) + 1e-9 < want:
                return False
    return True


def prefers(task_needs: Needs | None, worker_labels: Mapping[str, str] | None) -> bool:
    """Whether a worker with ``worker_labels`` carries every label the task prefers."""
    if task_needs is None or not task_needs.prefer:
        return False
    if not worker_labels:
        return False
    return all(worker_labels.get(k) == v for k, v in task_needs.prefer.items())


Offer = tuple[frozenset[str] | None, Mapping[str, str], Mapping[str, float], frozenset[str]]
"""What a worker offers: task names (None: any), labels, capacities, Celery queues."""


def never_reason(name: str, task_needs: Needs | None, offers: Iterable[Offer]) -> str | None:
    """Why no worker among ``offers`` could ever run the task, or None when one could.

    Each offer is a worker's (task names or None for any, labels, capacities,
    queues it consumes).
    The reason names the first requirement that no worker meets, and what the
    largest worker offers for it.
    """
    offers = list(offers)
    if not offers:
        return None
    named = [o for o in offers if o[0] is None or name in o[0]]
    if not named:
        return f"no live worker registered the task name {name!r}"
    if task_needs is None:
        return None
    if task_needs.queue is not None:
        queued = [o for o in named if task_needs.queue in o[3]]
        if not queued:
            seen = sorted({q for o in named for q in o[3]})
            return (
                f"no live worker serving {name!r} consumes the queue {task_needs.queue!r}; "
                f"queues consumed: {', '.join(seen) or 'none'}"
            )
        named = queued
    if task_needs.labels:
        labelled = [o for o in named if fits(Needs(None, task_needs.labels), o[1], None)]
        if not labelled:
            seen = sorted({f"{k}={v}" for o in named for k, v in o[1].items()})
            return (
                f"no live worker serving {name!r} has the labels {task_needs.labels}; "
                f"labels offered: {', '.join(seen) or 'none'}"
            )
        named = labelled
    if task_needs.resources:
        if any(fits(Needs(task_needs.resources), None, o[2]) for o in named):
            return None
        for res, want in sorted(task_needs.resources.items()):
            most = max(o[2].get(res, 0.0) for o in named)
            if most + 1e-9 < want:
                return (
                    f"resource {res!r}: the task needs {want:g}, the largest fitting "
                    f"worker offers {most:g}"
                )
        return f"no single live worker offers all of {task_needs.resources} at once"
    return None
