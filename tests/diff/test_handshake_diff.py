"""Differential tests of connection negotiation: what the broker offers and how it honours the tune.

Clients decide features from connection.start's capabilities table and size their frames from
connection.tune, so these must match RabbitMQ's exactly. Server identity (product, version,
platform, copyright, cluster name) is the one thing expected to differ and is left out.
"""

from __future__ import annotations

from pika.spec import Basic, Channel, Connection, Queue

from differential import describe
from wireclient import WireClient


def test_start_and_tune_offer_the_same_protocol_capabilities_and_limits(differential):
    def scenario(url, _names):
        with WireClient(url) as client:
            opened = client.open()
            start, tune = client.start, client.tune
            return {
                "version": (start.version_major, start.version_minor),
                "mechanisms": start.mechanisms,
                "locales": start.locales,
                "capabilities": start.server_properties.get("capabilities"),
                "tune": describe(tune),
                "open": describe(opened.method),
            }

    offer = differential(scenario)
    assert offer["version"] == (0, 9)
    assert offer["tune"][1]["frame_max"] == 131072


def test_amqplain_login_is_accepted_like_plain(differential):
    def scenario(url, _names):
        with WireClient(url) as client:
            return type(client.open(mechanism="AMQPLAIN").method).NAME

    assert differential(scenario) == "Connection.OpenOk"


def test_a_smaller_client_frame_max_splits_delivered_bodies_accordingly(differential):
    body = bytes(range(256)) * 40  # 10,240 bytes: three 4,088-byte frames at frame_max 4096

    def scenario(url, _names):
        with WireClient(url) as client:
            client.open(frame_max=4096)
            client.channel(1)
            queue = client.call(1, Queue.Declare(queue="", exclusive=True)).queue
            client.send(1, Basic.Publish(exchange="", routing_key=queue), body=body)
            _method, _props, got = client.get(1, queue)
            return got == body, client.last_body_frame_sizes

    intact, sizes = differential(scenario)
    assert intact and sizes == [4088, 4088, 2064]


def test_opening_more_channels_than_the_negotiated_channel_max_is_a_530(differential):
    # RabbitMQ counts open channels against channel_max; it does not bound the channel number.
    def scenario(url, _names):
        with WireClient(url) as client:
            client.open(channel_max=2)
            replies = [client.call(number, Channel.Open(), Channel.OpenOk) for number in (1, 7)]
            replies.append(client.call(3, Channel.Open(), Channel.OpenOk))
            return [(type(r).NAME, getattr(r, "reply_code", None), getattr(r, "reply_text", None),
                     getattr(r, "class_id", None), getattr(r, "method_id", None)) for r in replies]

    replies = differential(scenario)
    assert replies[-1] == ("Connection.Close", 530, "NOT_ALLOWED - number of channels opened (2) has reached "
                                                    "the negotiated channel_max (2)", 0, 0)


def test_connection_close_handshake_is_answered_with_close_ok(differential):
    def scenario(url, _names):
        with WireClient(url) as client:
            client.open()
            client.channel(1)
            client.send(0, Connection.Close(reply_code=200, reply_text="client done", class_id=0, method_id=0))
            # The side that sent close hangs up after close-ok; the broker does not need to.
            return describe(client.wait(0, Connection.CloseOk).method)

    assert differential(scenario) == ("Connection.CloseOk", {})
