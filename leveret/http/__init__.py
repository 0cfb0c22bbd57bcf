"""The management HTTP API: RabbitMQ's management API shape (a read-only subset) and Prometheus /metrics.

It sits on top of the broker like the server does: the server starts it with itself as the target
(`app.ManagementListener`), and every handler reads the live broker model on the server's event loop, so
no locking is needed. One module per resource: overview, queues, exchanges, metrics.
"""
