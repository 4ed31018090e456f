"""yardmaster's errors survive pickling, which Celery's prefork pool uses to hand a
task's exception from the pool process to the worker (not the wire: that is JSON)."""

from __future__ import annotations

import pickle

import pytest

from scheduler.errors import (
    BackpressureError,
    InvalidInputError,
    RedisUnreachableError,
    TaskFailedError,
    UnknownTaskError,
)
from workers.publishing import UnsupportedOptionError

ERRORS = [
    UnsupportedOptionError("link_error", "sig", "a new-style errback"),
    InvalidInputError("priority", 99, "an integer from 0 to 9", problem="too high"),
    UnknownTaskError("nope", ["add", "mul"]),
    TaskFailedError("abc", "ValueError: boom"),
    BackpressureError("pending", 2.0, 120.0, 100.0),
    RedisUnreachableError("redis://127.0.0.1:1/0", "refused"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_comes_back_from_pickle_with_its_type_message_and_attributes(error):
    # Unpickling used to call the class with the message alone, which raised
    # TypeError (missing arguments) and made the pool lose its worker process.
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.__dict__ == error.__dict__
