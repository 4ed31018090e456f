"""``-A MODULE``: load a user's Celery app the way ``celery -A`` does.

Celery's own finder (:func:`celery.app.utils.find_app`) reads the name, so the
rules are Celery's: ``module:attr``, a module holding an app (``app`` or
``celery``, else the only Celery app in it), or a package whose ``celery``
submodule holds one. The app must be a yardmaster app, one made by
:func:`workers.app.create_app`: a plain Celery app would publish to queues no
yardmaster worker reads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from celery import Celery
from celery.app.utils import find_app

from broker_config.celery_app import SETTINGS_KEY, app_settings
from scheduler.errors import InvalidInputError
from workers.publishing import is_yardmaster_app


def load_app(spec: str, overrides: Mapping[str, Any] | None = None) -> Celery:
    """The yardmaster app ``spec`` names, its settings updated with ``overrides``.

    The current directory is put first on ``sys.path`` (as ``celery -A`` does).

    Raises:
        InvalidInputError: ``spec`` names nothing importable, or not a yardmaster app.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found = find_app(spec)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(
            "-A",
            spec,
            "a module, module:attr or package holding a Celery app made by "
            "workers.app.create_app()",
            problem=f"cannot load it: {exc}",
        ) from None
    if not isinstance(found, Celery) or not is_yardmaster_app(found):
        raise InvalidInputError(
            "-A",
            spec,
            "an app made by workers.app.create_app() (docs/celery.md)",
            problem=f"it names {type(found).__name__}, not a yardmaster app",
        )
    if overrides:
        found.conf[SETTINGS_KEY] = app_settings(found).model_copy(update=dict(overrides))
    return found
