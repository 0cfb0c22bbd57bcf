"""Micro-benchmarks of the AMQP codec's hot paths (not a test; prints µs per operation).

    python bench/bench_codec.py [--quick]

parse:    FrameParser.feed over a read holding many small publish frames (µs per frame)
decode:   decode_method of a basic.publish payload
reader:   ConnectionReader.receive_data, publish (method+header+body) -> ContentReceived,
          small and 128 KiB bodies, whole and in 64 KiB socket-sized reads
props:    BasicProperties.from_raw + delivery_mode, and a full decode with headers
table:    decode_table / encode_table of typical small tables (flat headers, client properties)
deliver:  basic_deliver_frames for a small and a 128 KiB body
ack:      basic_ack_frame
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leveret.amqp import spec  # noqa: E402
from leveret.amqp.connection import ConnectionReader  # noqa: E402
from leveret.amqp.parser import FrameParser  # noqa: E402
from leveret.amqp.properties import BasicProperties  # noqa: E402
from leveret.amqp.serializer import (  # noqa: E402
    PROTOCOL_HEADER, basic_ack_frame, basic_deliver_frames, content_frames,
)
from leveret.amqp.table import decode_table, encode_table  # noqa: E402

# A message's headers as applications send them, and a client's connection.start-ok properties
# (one nested table): the two tables leveret decodes and encodes most.
HEADERS = {"trace-id": "4bf92f3577b34da6", "retries": 3, "source": "billing", "urgent": True}
CLIENT_PROPERTIES = {
    "product": "pika", "version": "1.3.2", "platform": "Python 3.11.4",
    "capabilities": {"publisher_confirms": True, "basic.nack": True, "consumer_cancel_notify": True,
                     "connection.blocked": True, "authentication_failure_close": True},
    "information": "See https://pika.readthedocs.io",
}


def measure(label: str, func, per_call: int = 1, rounds: int = 20000) -> None:
    """Run func rounds times (best of 5: the machine is shared) and print µs per unit."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            func()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<48} {best / rounds / per_call * 1e6:8.3f} µs")


def main() -> None:
    quick = "--quick" in sys.argv
    scale = 10 if quick else 1
    publish = spec.BasicPublish(exchange="amq.direct", routing_key="orders.created", mandatory=False)
    props = BasicProperties(content_type="application/json", delivery_mode=2, headers={"trace": "abc", "n": 1})
    small = b"x" * 200
    one_publish = b"".join(content_frames(1, publish, props.raw, small, 131072))
    read = one_publish * 100  # 300 frames in one read

    parser = FrameParser()
    measure("parse: FrameParser.feed, per frame", lambda: parser.feed(read), per_call=300, rounds=2000 // scale)
    # What a socket really delivers: 64 KiB reads that cut frames in two (the straddling path).
    tiny = b"".join(content_frames(1, publish, BasicProperties(delivery_mode=1).raw, b"x" * 16, 131072))
    cut = tiny * 20000
    reads = [cut[i : i + 65536] for i in range(0, len(cut), 65536)]

    def feed_reads() -> None:
        for chunk in reads:
            parser.feed(chunk)

    measure("parse: 16 B publishes in 64 KiB reads, per frame", feed_reads, per_call=60000, rounds=20 // min(scale, 2))

    payload = publish.encode()
    decode = spec.decode_method
    measure("decode: basic.publish payload", lambda: decode(payload), rounds=100000 // scale)
    measure("encode: BasicPublish.encode()", publish.encode, rounds=100000 // scale)

    reader = ConnectionReader()
    reader.receive_data(PROTOCOL_HEADER)
    measure("reader: 200 B publish -> ContentReceived, per msg", lambda: reader.receive_data(read), per_call=100, rounds=1000 // scale)
    big_publish = b"".join(content_frames(1, publish, props.raw, b"y" * 131072, 131072))
    measure("reader: 128 KiB publish (2 body frames)", lambda: reader.receive_data(big_publish), rounds=2000 // scale)
    chunks = [big_publish[i : i + 65536] for i in range(0, len(big_publish), 65536)]

    def in_socket_reads():
        for chunk in chunks:
            reader.receive_data(chunk)

    measure("reader: 128 KiB publish in 64 KiB reads", in_socket_reads, rounds=2000 // scale)

    raw = props.raw
    measure("props: from_raw + delivery_mode", lambda: BasicProperties.from_raw(raw).delivery_mode, rounds=100000 // scale)
    measure("props: from_raw + full decode (headers)", lambda: BasicProperties.from_raw(raw).headers, rounds=50000 // scale)
    plain = BasicProperties(content_type="application/json", delivery_mode=2).raw
    measure("props: from_raw + check (every publish)", lambda: BasicProperties.from_raw(plain).check(), rounds=100000 // scale)

    for name, table in (("4 headers", HEADERS), ("client properties", CLIENT_PROPERTIES)):
        wire = encode_table(table)
        measure(f"table: decode_table, {name}", lambda: decode_table(wire, 0), rounds=100000 // scale)
        measure(f"table: encode_table, {name}", lambda: encode_table(table), rounds=100000 // scale)

    measure(
        "deliver: basic_deliver_frames, 200 B body",
        lambda: basic_deliver_frames(1, "amq.ctag-abc", 12345, False, "amq.direct", "orders.created", raw, small, 131072),
        rounds=100000 // scale,
    )
    big = b"z" * 131072
    measure(
        "deliver: basic_deliver_frames, 128 KiB body",
        lambda: basic_deliver_frames(1, "amq.ctag-abc", 12345, False, "amq.direct", "orders.created", raw, big, 131072),
        rounds=20000 // scale,
    )
    deliver = spec.BasicDeliver(consumer_tag="amq.ctag-abc", delivery_tag=12345, exchange="amq.direct", routing_key="orders.created")
    measure(
        "deliver: generic content_frames (comparison)",
        lambda: content_frames(1, deliver, raw, small, 131072),
        rounds=100000 // scale,
    )
    measure("ack: basic_ack_frame", lambda: basic_ack_frame(1, 12345, False), rounds=200000 // scale)


if __name__ == "__main__":
    main()
