"""How Celery and Kombu are wired for yardmaster: JSON only, late acks, one queue per worker."""

from __future__ import annotations

from broker_config.celery_app import celery_config, make_celery
from broker_config.publisher import CeleryPublisher

__all__ = ["CeleryPublisher", "celery_config", "make_celery"]
