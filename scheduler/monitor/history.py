"""JSON Lines history of metrics, anomalies and health snapshots, rotated by size.

One object per line, each with ``kind`` (``metrics``, ``health``,
``anomaly_raised``, ``anomaly_cleared``) and ``time`` (Redis server time).
When the file would pass ``max_bytes`` it is renamed to ``FILE.1`` (the older
ones shift to ``FILE.2`` ...), and at most ``keep`` rotated files remain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class History:
    """Appends JSON lines to ``path``, rotating it by size.

    Args:
        path: The history file (its directory is created).
        max_bytes: Size at which the file is rotated.
        keep: Rotated files kept.
    """

    def __init__(self, path: str | Path, *, max_bytes: int, keep: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, kind: str, time: float, body: dict[str, Any]) -> None:
        """Append one line."""
        line = json.dumps({"kind": kind, "time": time, **body}, separators=(",", ":"))
        data = (line + "\n").encode()
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self.max_bytes:
            self.rotate()
        with open(self.path, "ab") as out:
            out.write(data)

    def rotate(self) -> None:
        """Shift ``FILE.N-1`` to ``FILE.N`` ... and ``FILE`` to ``FILE.1``; drop the oldest."""
        oldest = self._rotated(self.keep)
        if oldest.exists():
            oldest.unlink()
        for n in range(self.keep - 1, 0, -1):
            if self._rotated(n).exists():
                os.replace(self._rotated(n), self._rotated(n + 1))
        if self.path.exists():
            os.replace(self.path, self._rotated(1))

    def _rotated(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")
