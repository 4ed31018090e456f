"""The worker's broker transport (broker_config/transport.py): kombu's Redis transport
that keeps one Redis client per channel, on a real Redis."""

from __future__ import annotations

from redis import Redis

from broker_config import make_celery
from broker_config.transport import ALIAS, Transport
from scheduler.settings import load_settings

QUEUE = "ym-transport-test"


def _app(url: str):  # type: ignore[no-untyped-def]
    return make_celery(load_settings(redis_url=url), url)


def test_apps_use_the_transport_and_a_channel_hands_out_one_client(redis_server):
    app = _app(redis_server.url)
    assert app.conf.broker_transport == ALIAS
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, Transport)
        channel = conn.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        given = Redis.from_url(redis_server.url)
        with channel.conn_or_acquire(given) as third:
            assert third is given
        # kombu replaces the pool after a lost connection: a new client goes with it
        channel._pool = None
        with channel.conn_or_acquire() as fourth:
            assert fourth is not first
            assert fourth.connection_pool is channel.pool
        given.close()


def test_late_acks_and_a_rejected_message_go_through_one_client_and_survive_a_killed_connection(
    redis_server,
):
    app = _app(redis_server.url)
    plain = Redis.from_url(redis_server.url)
    with app.connection_for_write() as conn:
        sq = conn.SimpleQueue(QUEUE, no_ack=False)
        for i in range(20):
            sq.put({"n": i})
        got = []
        for i in range(20):
            message = sq.get(timeout=5)
            if i == 10:  # the server drops the kept client's connection: the ack reconnects
                with sq.channel.conn_or_acquire() as kept:
                    assert plain.client_kill_filter(_id=kept.client_id()) == 1
            # kombu records each delivery in its unacked hash before handing it out
            assert plain.hexists("unacked", message.delivery_tag)
            got.append(message.payload["n"])
            if i == 19:
                message.reject(requeue=True)  # back at the head of the queue
            else:
                message.ack()
        assert got == list(range(20))
        assert plain.hlen("unacked") == 0
        again = sq.get(timeout=5)
        assert again.payload == {"n": 19}
        again.ack()
        assert plain.hlen("unacked") == 0
        assert plain.llen(QUEUE) == 0
        sq.close()
    plain.close()


def test_a_channel_closed_after_its_connection_details_are_gone_closes_without_an_error(
    redis_server,
):
    # Celery closes the broker connection when Redis restarts under a worker; by then
    # kombu may have dropped the transport's connection details, and kombu's channel
    # failed with AttributeError putting its unacknowledged deliveries back, which
    # stopped the worker. Here the details are dropped as kombu drops them.
    app = _app(redis_server.url)
    plain = Redis.from_url(redis_server.url)
    conn = app.connection_for_write()
    sq = conn.SimpleQueue(QUEUE, no_ack=False)
    sq.put({"n": 1})
    held = sq.get(timeout=5)  # delivered, not acknowledged
    assert plain.hexists("unacked", held.delivery_tag)
    conn._do_close_transport()  # the transport forgets its connection (client = None)
    conn.release()  # closes the channel: kombu's own raised AttributeError here
    assert plain.hexists("unacked", held.delivery_tag), "left for a later restore"
    assert plain.llen(QUEUE) == 0
    plain.close()


def test_a_message_acknowledged_after_its_channel_closed_is_forgotten_without_an_error(
    redis_server,
):
    # A task that ran across a Redis restart is acknowledged on the channel it came
    # from, after Celery closed that channel and kombu dropped its connection details:
    # the ack asked for the channel's pool, raised AttributeError and stopped the worker.
    app = _app(redis_server.url)
    plain = Redis.from_url(redis_server.url)
    conn = app.connection_for_write()
    sq = conn.SimpleQueue(QUEUE, no_ack=False)
    sq.put({"n": 1})
    sq.put({"n": 2})
    held = sq.get(timeout=5)
    other = sq.get(timeout=5)
    conn._do_close_transport()
    conn.release()
    held.ack()  # the closed channel's last client reaches the same Redis
    assert not plain.hexists("unacked", held.delivery_tag)
    assert plain.hexists("unacked", other.delivery_tag), "not acknowledged: kept for restore"
    plain.close()
