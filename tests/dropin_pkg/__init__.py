"""A user's package whose app lives in its ``celery`` submodule (``-A tests.dropin_pkg``)."""
