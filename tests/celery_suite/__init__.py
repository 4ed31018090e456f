"""Celery's own integration tests (``t/integration`` of the celery sdist matching the
installed Celery), run against plain Celery and against a yardmaster cluster.

``python -m tests.celery_suite`` runs both and compares them (docs/celery.md,
"Celery's own integration tests"). It is a check run by hand or in a scheduled job,
not part of the default test run: the two passes take tens of minutes.
"""
