"""Per-message CPU of the AMQP session path, in-process: bytes through AMQPProtocol -> Session -> broker.

    python3 bench/bench_session.py [repeats]

No socket and no client: a fake transport takes the output. 60,000 messages of 100 B, 100 per read;
prints the best of `repeats` runs in µs per message for publish, publish in confirm mode, and deliver +
ack (a consumer acking each delivery). Only `AMQPProtocol(server)` is used, so the same script measures
an older tree too (PYTHONPATH=that tree): compare before/after in alternating runs (docs/benchmarks.md).
"""
import asyncio
import sys
import tempfile
import time

from leveret.amqp import spec
from leveret.amqp.properties import BasicProperties
from leveret.amqp.serializer import PROTOCOL_HEADER, content_frames, method_frame
from leveret.config import Settings
from leveret.server.app import Server
from leveret.server.protocol import AMQPProtocol


class Transport:
    def __init__(self):
        self.out = 0
    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 5) if name == "peername" else None
    def writelines(self, frames):
        self.out += len(frames)
    def write(self, data):
        self.out += 1
    def is_closing(self):
        return False
    def get_write_buffer_size(self):
        return 0
    def close(self): pass
    def abort(self): pass
    def pause_reading(self): pass
    def resume_reading(self): pass


def handshake():
    return b"".join([
        PROTOCOL_HEADER,
        method_frame(0, spec.ConnectionStartOk(client_properties={}, mechanism="PLAIN", response=b"\0guest\0guest", locale="en_US")),
        method_frame(0, spec.ConnectionTuneOk(channel_max=100, frame_max=131072, heartbeat=0)),
        method_frame(0, spec.ConnectionOpen(virtual_host="/")),
        method_frame(1, spec.ChannelOpen()),
        method_frame(1, spec.QueueDeclare(queue="q")),
    ])


async def run(n, batch, modes=("publish", "confirm", "deliver+ack")):
    with tempfile.TemporaryDirectory() as d:
        # The disk and memory checks run on wall-clock timers: far apart, so a run slowed down (under
        # valgrind: bench/bench_instructions.py) does not count them per message.
        server = Server(Settings(port=0, http_port=-1, host="127.0.0.1", data_dir=d, disk_check_interval=3600.0,
                                 memory_monitor_interval=3_600_000))
        await server.start()
        try:
            results = {}
            props = BasicProperties(content_type="text/plain").raw
            pub = b"".join(content_frames(1, spec.BasicPublish(exchange="", routing_key="q"), props, b"x" * 100, 131072))
            for mode in modes:
                p = AMQPProtocol(server)
                p.connection_made(Transport())
                p.data_received(handshake())
                await asyncio.sleep(0)
                if mode == "confirm":
                    p.data_received(method_frame(1, spec.ConfirmSelect()))
                if mode == "deliver+ack":
                    chunk = pub * batch
                    for _ in range(n // batch):
                        p.data_received(chunk)
                    await asyncio.sleep(0)
                    p.data_received(method_frame(1, spec.BasicQos(prefetch_count=batch)))
                    start = time.process_time()
                    p.data_received(method_frame(1, spec.BasicConsume(queue="q", consumer_tag="c")))
                    tag = 0
                    for _ in range(n // batch):
                        tag += batch
                        acks = (method_frame(1, spec.BasicAck(delivery_tag=t, multiple=False))
                                for t in range(tag - batch + 1, tag + 1))
                        p.data_received(b"".join(acks))
                        await asyncio.sleep(0)
                    elapsed = time.process_time() - start
                else:
                    chunk = pub * batch
                    start = time.process_time()
                    for _ in range(n // batch):
                        p.data_received(chunk)
                        await asyncio.sleep(0)
                    elapsed = time.process_time() - start
                results[mode] = elapsed / n * 1e6
                p.data_received(method_frame(1, spec.QueuePurge(queue="q")))
                p.transport = None
                p.connection_lost(None)
                await asyncio.sleep(0)
            return results
        finally:
            await server.stop()


def main():
    n, batch, reps = 60000, 100, int(sys.argv[1]) if len(sys.argv) > 1 else 5
    best = {}
    for _ in range(reps):
        r = asyncio.run(run(n, batch))
        for k, v in r.items():
            best[k] = min(best.get(k, 1e9), v)
    print(" ".join(f"{k}={v:.3f}us" for k, v in best.items()))


if __name__ == "__main__":
    main()
