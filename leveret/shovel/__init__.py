"""Dynamic shovels: AMQP 0-9-1 clients inside leveret that move messages between brokers (issue 13)."""
