"""The guard on kombu's Redis channel (worker/broker.py): a channel whose transport was closed
(what `Connection.collect()` leaves behind after a connection loss) answers with the
transport's connection error, which kombu's close paths ignore, instead of an AttributeError
that ended the worker. The whole fault, on real processes: tests/integration/test_redis_stop.py."""

from __future__ import annotations

import pytest
from kombu import Connection
from kombu.common import ignore_errors

from worker.broker import guard_closed_transport


def test_a_channel_of_a_closed_transport_fails_as_a_lost_connection(redis_db):
    guard_closed_transport()
    guard_closed_transport()  # once is enough; twice changes nothing
    connection = Connection(redis_db.url)
    channel = connection.default_channel
    # A message delivered and not acknowledged: closing the channel restores it to the queue.
    payload = channel.prepare_message("{}", content_type="application/json")
    payload["properties"].update(delivery_tag="tag-1", delivery_info={
        "exchange": "xmlconv-test", "routing_key": "xmlconv-test"})
    channel.qos.append(channel.Message(payload, channel=channel), "tag-1")
    connection.transport.client = None  # as collect() leaves the transport
    channel._pool = None  # its pools were disconnected on the first close attempt
    with pytest.raises(connection.connection_errors):
        channel._connparams()
    ignore_errors(connection, channel.close)  # no AttributeError escapes
    assert channel.closed
