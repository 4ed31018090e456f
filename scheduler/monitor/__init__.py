"""yardmaster's own monitors: metrics, anomalies and health from the records it writes.

Pure parts (:mod:`.metrics`, :mod:`.anomalies`, :mod:`.health`,
:mod:`.prometheus`) take data and return data; :class:`Monitor` reads Redis
through the store (``store.events``, ``store.workers``); :mod:`.web` serves it
over HTTP and :mod:`.live` in a terminal.
"""

from __future__ import annotations

from scheduler.monitor.monitor import Monitor

__all__ = ["Monitor"]
