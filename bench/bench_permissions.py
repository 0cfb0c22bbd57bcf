"""What permission checks cost a publish, in-process: users with and without restricting patterns.

    python3 bench/bench_permissions.py [repeats]

Same path and fake transport as bench_session.py (bytes through AMQPProtocol -> Session -> broker,
60,000 publishes of 100 B, 100 per read), best of `repeats` runs, µs of CPU per publish, for:
guest (".*" three times), a user with narrower patterns (write "^amq\\.(default|topic)$"), and the same
user publishing to amq.topic under a topic permission. Each channel checks an exchange (and a topic key)
once, then finds it in its cache. Figures: docs/security.md. Compare with bench_session.py run on a tree
from before permissions (PYTHONPATH=that tree) for the cost of the checks themselves.
"""
import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.bench_session import Transport  # noqa: E402
from leveret.amqp import spec  # noqa: E402
from leveret.amqp.properties import BasicProperties  # noqa: E402
from leveret.amqp.serializer import PROTOCOL_HEADER, content_frames, method_frame  # noqa: E402
from leveret.config import Settings  # noqa: E402
from leveret.server.app import Server  # noqa: E402
from leveret.server.protocol import AMQPProtocol  # noqa: E402

CASES = {
    # label: (user, exchange, routing key)
    "unrestricted": ("guest", "", "q"),
    "restricted": ("limited", "", "q"),
    "topic-permission": ("limited", "amq.topic", "limited.k"),
}
PASSWORDS = {"guest": "guest", "limited": "pw"}


def handshake(user: str) -> bytes:
    return b"".join([
        PROTOCOL_HEADER,
        method_frame(0, spec.ConnectionStartOk(client_properties={}, mechanism="PLAIN",
                                               response=f"\0{user}\0{PASSWORDS[user]}".encode(), locale="en_US")),
        method_frame(0, spec.ConnectionTuneOk(channel_max=100, frame_max=131072, heartbeat=0)),
        method_frame(0, spec.ConnectionOpen(virtual_host="/")),
        method_frame(1, spec.ChannelOpen()),
    ])


async def run(n: int, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        server = Server(Settings(port=0, http_port=-1, host="127.0.0.1", data_dir=d))
        server.users.add_user("limited", "pw")
        server.users.set_permissions("limited", "/", "", "^amq\\.(default|topic)$", "")
        server.users.set_topic_permissions("limited", "/", "amq.topic", "^{username}\\.", "")
        server.broker.vhost("/").declare_queue("q")
        server.broker.vhost("/").bind_queue("q", "amq.topic", "#", {})
        await server.start()
        try:
            results = {}
            props = BasicProperties(content_type="text/plain").raw
            for label, (user, exchange, key) in CASES.items():
                pub = b"".join(content_frames(1, spec.BasicPublish(exchange=exchange, routing_key=key), props,
                                              b"x" * 100, 131072))
                p = AMQPProtocol(server)
                p.connection_made(Transport())
                p.data_received(handshake(user))
                await asyncio.sleep(0)
                chunk = pub * batch
                start = time.process_time()
                for _ in range(n // batch):
                    p.data_received(chunk)
                    await asyncio.sleep(0)
                results[label] = (time.process_time() - start) / n * 1e6
                assert not p.session.closed, f"{label}: the publishes were refused"
                server.broker.vhost("/").purge_queue("q")
                p.transport = None
                p.connection_lost(None)
                await asyncio.sleep(0)
            return results
        finally:
            await server.stop()


def main() -> None:
    n, batch, reps = 60000, 100, int(sys.argv[1]) if len(sys.argv) > 1 else 5
    best: dict[str, float] = {}
    for _ in range(reps):
        for k, v in asyncio.run(run(n, batch)).items():
            best[k] = min(best.get(k, 1e9), v)
    print(" ".join(f"{k}={v:.3f}us" for k, v in best.items()))


if __name__ == "__main__":
    main()
