"""A store that cannot write: affected publishes are nacked, the connection and the broker stay up."""

from __future__ import annotations

import pika
import pytest

from leveret.embedded import EmbeddedBroker


def test_a_failing_store_write_nacks_the_publish_and_keeps_serving(tmp_path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        ch.queue_declare("disk", durable=True)
        ch.confirm_delivery()
        ch.basic_publish("", "disk", b"before", pika.BasicProperties(delivery_mode=2))

        queue = broker.server.broker.vhost("/").queues["disk"]
        healthy_append = queue.store.append

        def failing_append(*args, **kwargs):
            raise OSError(28, "No space left on device")

        queue.store.append = failing_append
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish("", "disk", b"lost", pika.BasicProperties(delivery_mode=2))
        queue.store.append = healthy_append

        # the same channel keeps working, and a transient publish never touched the store
        ch.basic_publish("", "disk", b"after", pika.BasicProperties(delivery_mode=2))
        bodies = [ch.basic_get("disk", auto_ack=True)[2] for _ in range(2)]
        assert bodies == [b"before", b"after"]
        conn.close()
