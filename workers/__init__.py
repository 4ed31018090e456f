"""The Celery side of yardmaster: app entry point, signal hooks, demo tasks."""
