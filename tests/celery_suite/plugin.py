"""pytest plugin that runs Celery's integration suite on a yardmaster cluster.

Celery's ``t/integration/conftest.py`` imports ``celery_app``, ``celery_session_app``
and ``celery_session_worker`` from :mod:`celery.contrib.pytest`. Loaded first (``-p
tests.celery_suite.plugin``), this module replaces those three in
:mod:`celery.contrib.pytest` with fixtures that give the tests a yardmaster app
(:func:`workers.app.create_app`: every publish is a submission, results come from
yardmaster's records) and, in place of Celery's in-process test worker, a real
yardmaster dispatcher and a real ``yardmaster worker -A tests.celery_suite.worker_app``
on the Redis named by ``YM_REDIS_URL``. Celery's files are not changed.

One setting of the app differs from a default yardmaster app: ``task_default_queue``
is ``celery``, because Celery's harness fails any test whose app names another queue.
yardmaster does not publish to the default queue (the dispatcher hands each task to a
worker's own queue), so the name changes nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery.contrib.pytest as celery_fixtures
import pytest
from celery import Celery

from scheduler.local_cluster import LocalCluster
from scheduler.settings import load_settings
from workers.app import create_app

SLOTS = int(os.environ.get("YM_SUITE_SLOTS", "1"))
"""The worker's slots: 1, as Celery's test worker (``start_worker``) runs one process."""

KEPT = ("result_extended",)
"""The settings of Celery's ``celery_config`` applied to the yardmaster app; its broker
and result backend are yardmaster's own, the rest is for other brokers."""


@dataclass
class SuiteWorker:
    """What ``celery_session_worker`` yields: the app and the cluster behind it."""

    app: Celery
    cluster: LocalCluster


_APP: Celery | None = None


def _app(config: dict[str, Any]) -> Celery:
    global _APP
    if _APP is None:
        _APP = create_app(load_settings())
        _APP.conf.task_default_queue = "celery"
        _APP.conf.update({k: config[k] for k in KEPT if k in config})
    return _APP


@pytest.fixture(scope="session")
def celery_session_app(celery_config: dict[str, Any]) -> Celery:
    """The suite's yardmaster app, one for the session."""
    return _app(celery_config)


@pytest.fixture
def celery_app(celery_config: dict[str, Any]) -> Celery:
    """The same yardmaster app: Celery's harness makes it current before each test."""
    return _app(celery_config)


@pytest.fixture(scope="session")
def celery_session_worker(
    celery_session_app: Celery,
    celery_includes: Sequence[str],
    celery_class_tasks: Sequence[Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SuiteWorker]:
    """A yardmaster dispatcher and worker running Celery's task module."""
    for module in celery_includes:
        celery_session_app.loader.import_task_module(module)
    for task in celery_class_tasks:
        celery_session_app.register_task(task)
    here = Path.cwd()
    path = os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")])
    log_dir = Path(os.environ.get("YM_SUITE_LOGS") or tmp_path_factory.mktemp("cluster"))
    cluster = LocalCluster(load_settings(), log_dir=log_dir, env={"PYTHONPATH": path}, cwd=here)
    try:
        cluster.dispatcher()
        cluster.worker("suite@yardmaster", slots=SLOTS, app_module="tests.celery_suite.worker_app")
        yield SuiteWorker(celery_session_app, cluster)
    finally:
        cluster.stop()


celery_fixtures.celery_app = celery_app  # type: ignore[assignment]
celery_fixtures.celery_session_app = celery_session_app  # type: ignore[assignment]
celery_fixtures.celery_session_worker = celery_session_worker  # type: ignore[assignment]
