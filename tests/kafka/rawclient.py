"""A minimal Kafka client over a plain socket, built on leveret's own schemas: for the protocol-level tests
(ordering, closing on bad input) that real clients never exercise. Real clients test the codec itself."""

from __future__ import annotations

import socket
import struct
from typing import Any

from leveret.kafka import apis
from leveret.kafka.records import encode_batch, encode_record
from leveret.kafka.wire import INT16, INT32, Reader, decode, encode


def request_bytes(api_key: int, version: int, correlation_id: int, body: dict[str, Any], client_id: str = "raw") -> bytes:
    out: list[bytes] = [INT16.pack(api_key), INT16.pack(version), INT32.pack(correlation_id),
                        INT16.pack(len(client_id)), client_id.encode()]
    encode(apis.SCHEMAS[api_key][0], version, body, out)
    payload = b"".join(out)
    return INT32.pack(len(payload)) + payload


def batch(values: list[bytes], key: bytes | None = None, timestamp: int = 1_700_000_000_000) -> bytes:
    body = bytearray()
    for i, value in enumerate(values):
        encode_record(body, i, 0, key, value, [])
    return encode_batch(0, timestamp, timestamp, len(values), len(values) - 1, body)


class RawClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._buffer = b""

    def send(self, api_key: int, version: int, correlation_id: int, body: dict[str, Any]) -> None:
        self.sock.sendall(request_bytes(api_key, version, correlation_id, body))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> tuple[int, bytes]:
        """(correlation id, body) of the next response; ConnectionError when the broker closed."""
        size = struct.unpack(">i", self._read(4))[0]
        payload = self._read(size)
        return struct.unpack(">i", payload[:4])[0], payload[4:]

    def call(self, api_key: int, version: int, body: dict[str, Any], correlation_id: int = 1) -> dict[str, Any]:
        self.send(api_key, version, correlation_id, body)
        got, payload = self.receive()
        assert got == correlation_id
        return decode(apis.SCHEMAS[api_key][1], version, Reader(payload))  # type: ignore[arg-type]

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the broker")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def closed_by_broker(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
