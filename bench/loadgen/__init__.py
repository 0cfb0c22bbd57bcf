"""leveret-loadgen: an AMQP 0-9-1 load generator over raw sockets.

Independent of the broker under test (it never imports ``leveret``): its own
struct-based codec (``wire``), pre-encoded publish batches and a one-pass
receive loop (``client``), process workers (``workers``), honesty checks on
every run (``ledger``), scenarios (a)-(h) (``scenarios``), the same through
pika and aio-pika (``userclients``), and a null broker that measures the
generator's own capacity (``nullbroker``).  Run ``python3 -m bench.loadgen -h``.
"""
