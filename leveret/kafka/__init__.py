"""The Kafka protocol, sans-IO: framing and schemas (frames.py, wire.py, apis.py), record batches
(records.py), the record <-> AMQP message mapping (mapping.py), topics as super streams (topics.py), the data
APIs (data.py), idempotent producers (producers.py) and consumer groups (groups.py). The asyncio side is
server/kafka_listener.py and server/kafka_session.py; docs/kafka.md is the user's view."""
