"""Benchmarks for leveret: the raw-socket load generator and comparisons with RabbitMQ."""
