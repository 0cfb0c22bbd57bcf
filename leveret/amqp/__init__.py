"""Sans-IO AMQP 0-9-1 codec and inbound protocol state (standard library only).

parser.FrameParser splits bytes into frames, spec decodes/encodes methods, properties and
table handle content properties and field tables, connection.ConnectionReader turns a
client's bytes into events, serializer builds outbound frames.
"""
