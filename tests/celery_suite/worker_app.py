"""The app the suite's yardmaster worker loads with ``-A``: a yardmaster app with
Celery's integration task module registered on it, unmodified."""

from __future__ import annotations

from workers.app import create_app

app = create_app()

# Celery's task module binds its ``@shared_task`` functions to the current app (this one).
import t.integration.tasks as celery_tasks  # noqa: E402

app.register_task(celery_tasks.ClassBasedAutoRetryTask)
