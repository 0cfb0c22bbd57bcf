"""Broker settings: one frozen value built from defaults <- TOML file <- LEVERET_* environment <- CLI flags.

The settings object is passed down explicitly; nothing reads configuration from a global.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Settings:
    """Everything a broker needs to know at start. Field names double as TOML keys and LEVERET_<NAME> variables."""

    host: str = "127.0.0.1"
    port: int = 5672
    data_dir: str = "./leveret-data"
    # Negotiated limits offered in connection.tune (RabbitMQ's defaults).
    frame_max: int = 131072
    channel_max: int = 2047
    heartbeat: int = 60
    # Largest message body accepted (RabbitMQ 3.10: max_message_size = 128 MiB).
    max_message_size: int = 134217728
    default_user: str = "guest"
    default_pass: str = "guest"
    default_vhost: str = "/"
    # Users that may only connect from loopback, as RabbitMQ's loopback_users.
    loopback_users: tuple[str, ...] = ("guest",)
    # Milliseconds a delivery may stay unacked before its channel is closed (RabbitMQ: 30 min); 0 disables.
    consumer_timeout: int = 1800000
    # Publishers are blocked when the data directory's free space falls under this many bytes.
    disk_free_limit: int = 50 * 1024 * 1024
    # Bytes of queued message bodies all queues together keep in memory before transient backlogs spill to
    # disk (durable ones are on disk anyway); each queue also has its own window (broker/paging.py).
    memory_budget: int = 1024 * 1024 * 1024
    # The memory alarm (RabbitMQ's vm_memory_high_watermark): at most 1.0 is a fraction of total RAM, more
    # than 1 or an amount with a unit ("512MiB", "2GB") is absolute. Over it, publishers are blocked; over
    # half of it, the memory budget shrinks so transient backlogs page out first.
    memory_high_watermark: str = "0.4"
    # Milliseconds between memory measurements (RabbitMQ's memory_monitor_interval).
    memory_monitor_interval: int = 2500
    # Bytes of output a connection may owe its client (returns, confirms, replies the transport could not send
    # yet) before we stop reading from it until it drains; deliveries to it already pause at 64 KiB.
    max_output_buffer: int = 1024 * 1024
    # Seconds a connection may take none of our output before it is closed: RabbitMQ's TCP send_timeout
    # (30 s with send_timeout_close, Ranch's default under RabbitMQ 3.10); 0 disables. With heartbeats the
    # heartbeat timeout applies too, whichever is shorter.
    send_timeout: float = 30.0
    # Seconds a client has to complete the AMQP handshake (RabbitMQ: handshake_timeout 10 s).
    handshake_timeout: float = 10.0
    # Management HTTP API and /metrics (RabbitMQ's management port); 0 picks a free port, negative disables it.
    http_host: str = "127.0.0.1"
    http_port: int = 15672
    log_level: str = "INFO"

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some fields changed (unknown names are an error)."""
        return dataclasses.replace(self, **changes)


def _coerce(name: str, value: Any) -> Any:
    """Convert a TOML or environment value to the field's declared type."""
    # With postponed annotations every field type is a string such as "int" or "tuple[str, ...]".
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind.startswith("tuple"):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(value)
    return str(value)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from the layers in order; later layers win. `overrides` are CLI flags (None = not given)."""
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    if config_file is not None:
        data = tomllib.loads(Path(config_file).read_text())
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ValueError(f"unknown setting {key!r} in {config_file}")
            values[name] = _coerce(name, value)
    env = os.environ if environ is None else environ
    for name in known:
        raw = env.get("LEVERET_" + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    return Settings(**values)
