"""Leveret: a message broker speaking AMQP 0-9-1 with RabbitMQ's extensions."""

__version__ = "0.1.0"
