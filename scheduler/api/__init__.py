"""The HTTP API (FastAPI): submit, inspect, cancel and steer; see docs/api.md."""

from __future__ import annotations

from scheduler.api.app import create_app

__all__ = ["create_app"]
