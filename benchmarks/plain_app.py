"""A plain Celery app: the baseline of the end-to-end benchmarks (``benchmarks/clusters.py``).

It uses the worker settings of a yardmaster cluster (late acks, prefetch
multiplier 1, JSON only, no result backend) without a scheduler: producers
publish straight to the default ``celery`` queue.

The worker reads the broker URL from ``YM_BENCH_PLAIN_BROKER`` so that the
benchmark can point it at a private ``redis-server``; the benchmark process
itself builds one app per server with :func:`make_app`. With
``YM_BENCH_PLAIN_TRANSPORT=ymredis`` the worker uses yardmaster's broker
transport (``broker_config/transport.py``) instead of kombu's: the benchmark
runs that too, to show how much of yardmaster's rate the transport alone
accounts for.
"""

from __future__ import annotations

import os
import time

from celery import Celery

BROKER_ENV = "YM_BENCH_PLAIN_BROKER"
TRANSPORT_ENV = "YM_BENCH_PLAIN_TRANSPORT"
QUEUE = "celery"
# Nothing listens on port 1: an unset variable fails loudly instead of
# reaching some shared Redis.
_NOWHERE = "redis://127.0.0.1:1/0"


def make_app(broker_url: str, transport: str = "") -> Celery:
    """A Celery app on ``broker_url`` with the ``noop`` and ``sleep`` tasks registered.

    ``transport``: ``""`` for kombu's Redis transport, ``"ymredis"`` for yardmaster's.
    """
    app = Celery("plain_bench", set_as_current=False)
    if transport:
        if transport != "ymredis":
            raise ValueError(f"{TRANSPORT_ENV}={transport!r}: expected '' or 'ymredis'")
        import broker_config.transport  # noqa: F401  (registers the alias)

        app.conf.broker_transport = transport
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_default_queue=QUEUE,
        # As in broker_config.celery_app: a running message is never redelivered.
        broker_transport_options={"visibility_timeout": 7 * 86400},
        worker_hijack_root_logger=False,
    )

    @app.task(name="noop", shared=False)
    def noop() -> None:
        """Do nothing: what is measured is Celery's own cost per task."""

    @app.task(name="sleep", shared=False)
    def sleep(seconds: float) -> None:
        """Wait ``seconds``: an I/O-bound task, as yardmaster's ``sleep`` without affinity."""
        time.sleep(seconds)

    return app


app = make_app(os.environ.get(BROKER_ENV, _NOWHERE), os.environ.get(TRANSPORT_ENV, ""))
