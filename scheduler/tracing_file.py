"""A span exporter that appends one JSON object per span to a file (``YM_OTEL=file``).

Several processes may share the file: each span is one ``write`` to a file
opened in append mode, so lines from different processes do not interleave.
The in-memory exporter of the SDK cannot show a trace that crosses processes;
this one can, which is what the tests and a quick look without a collector need.
Imported only when ``YM_OTEL=file`` (it needs ``opentelemetry-sdk``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


def span_line(span: ReadableSpan) -> dict[str, Any]:
    """The fields of one finished span, ids in hex as W3C writes them."""
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else "",
        "span_id": f"{ctx.span_id:016x}" if ctx else "",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
        "events": [e.name for e in span.events],
        "status": span.status.status_code.name,
        "service": span.resource.attributes.get("service.name"),
        "pid": os.getpid(),
    }


class JsonLinesExporter(SpanExporter):
    """Appends each exported span to ``path`` as a JSON line."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the spans, one line and one ``write`` each."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for span in spans:
                os.write(fd, (json.dumps(span_line(span), default=str) + "\n").encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS
