"""Broker settings: one frozen value built from defaults <- TOML file <- LEVERET_* environment <- CLI flags.

The settings object is passed down explicitly; nothing reads configuration from a global.
"""

from __future__ import annotations

import dataclasses
import decimal
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Settings:
    """Everything a broker needs to know at start. Field names double as TOML keys and LEVERET_<NAME> variables."""

    host: str = "127.0.0.1"
    # The plain AMQP listener; negative disables it (with ssl_port set: amqps only).
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
    # Seconds between free-space checks; the store also triggers one per quarter of disk_free_limit written.
    disk_check_interval: float = 1.0
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
    # Open AMQP connections the whole broker takes (RabbitMQ's connection_max); negative: no limit. One more
    # is refused at connection.open: 530 "connection refused: node connection limit (N) is reached".
    max_connections: int = -1
    # Management HTTP API and /metrics (RabbitMQ's management port); 0 picks a free port, negative disables it.
    http_host: str = "127.0.0.1"
    http_port: int = 15672
    # Serve the management API over HTTPS, with the ssl_* certificate settings of the amqps listener.
    http_ssl: bool = False
    log_level: str = "INFO"
    # The amqps listener (RabbitMQ's listeners.ssl, default 5671 once enabled): on `host`; negative (the
    # default) disables it, 0 picks a free port. It needs a certificate and its key (PEM files).
    ssl_port: int = -1
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    # CA certificates (PEM) that client certificates are verified against; needed by verify_peer.
    ssl_cacertfile: str = ""
    # verify_peer asks the client for a certificate and refuses one the CA bundle does not vouch for (and
    # offers the EXTERNAL mechanism to a client that presented one); verify_none asks for none.
    ssl_verify: str = "verify_none"
    # With verify_peer: refuse a client that presents no certificate at all.
    ssl_fail_if_no_peer_cert: bool = False
    ssl_min_version: str = "tlsv1.2"
    # Who a client certificate logs in as with EXTERNAL: its subject's CN, or (RabbitMQ's default) its whole
    # subject as RabbitMQ writes it ("CN=billing,O=Acme,C=GB").
    ssl_cert_login_from: str = "common_name"
    # The Kafka-protocol listener (docs/kafka.md), on `host`, serving default_vhost's streams; 0 picks a free
    # port (so does the default when `port` is 0), negative disables it. Topics a client names are created
    # (with kafka_partitions partitions) when kafka_auto_create_topics is on, as Kafka's auto.create.topics.enable.
    kafka_port: int = 9092
    kafka_auto_create_topics: bool = True
    kafka_partitions: int = 1
    # Kafka's producer.id.expiration.ms: an idempotent producer's state in a partition is dropped after this long
    # unused; and offsets.retention.minutes: an empty consumer group and its committed offsets go after this long.
    # SASL/PLAIN on the Kafka listener against leveret's users (kafka/sasl.py): off serves anyone who connects.
    # kafka_ssl: the Kafka listener speaks TLS, with the certificate and verification of the ssl_* settings.
    kafka_sasl: bool = False
    kafka_ssl: bool = False
    kafka_producer_id_expiration_ms: int = 7 * 24 * 3600 * 1000
    kafka_offsets_retention_minutes: int = 7 * 24 * 60
    # A definitions file (RabbitMQ's JSON, as GET /api/definitions exports it) imported at every start, after
    # recovery, as RabbitMQ's load_definitions; "" imports none. A file that cannot be imported fails the start.
    load_definitions: str = ""

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some fields changed (unknown names are an error)."""
        return dataclasses.replace(self, **changes)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the setting and where its value came from."""

    def __init__(self, name: str, source: str, problem: str) -> None:
        super().__init__(f"Invalid value for {name} ({source}): {problem}")
        self.name = name
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class Bounds:
    """The range a number may take; None leaves that side open."""

    minimum: float | None = None
    maximum: float | None = None


# Ranges of the numeric settings (names absent here take any number of their type). The protocol's limits:
# ports and the 16-bit channel_max/heartbeat of connection.tune; frame_max at least the spec's 4096 (0 would mean
# "no limit", which leveret does not offer); a body at most RabbitMQ's 512 MiB ceiling.
BOUNDS: dict[str, Bounds] = {
    "port": Bounds(None, 65535),  # negative: no plain AMQP listener (amqps only)
    "frame_max": Bounds(4096, 2**32 - 1),
    "channel_max": Bounds(1, 65535),
    "heartbeat": Bounds(0, 65535),
    "max_message_size": Bounds(1, 512 * 1024 * 1024),
    "consumer_timeout": Bounds(0, None),
    "disk_free_limit": Bounds(0, None),
    "disk_check_interval": Bounds(0.001, None),
    "memory_budget": Bounds(0, None),
    "max_output_buffer": Bounds(1, None),
    "memory_monitor_interval": Bounds(1, None),
    "send_timeout": Bounds(0, None),
    "handshake_timeout": Bounds(0.001, None),
    "http_port": Bounds(None, 65535),  # negative disables the listener
    "ssl_port": Bounds(None, 65535),  # negative disables the listener
    "kafka_port": Bounds(None, 65535),  # negative disables the listener
    "kafka_partitions": Bounds(1, 10000),
    "kafka_producer_id_expiration_ms": Bounds(1, None),
    "kafka_offsets_retention_minutes": Bounds(1, None),
}

# Integer settings counted in bytes: they also take a unit, as RabbitMQ's configuration does ("50MB", "1GiB").
SIZES = frozenset({"max_message_size", "disk_free_limit", "memory_budget", "max_output_buffer"})
SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3, "t": 1024**4, "tib": 1024**4,
}

# Words a setting may take, matched in any case and kept as written here.
CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "ssl_verify": ("verify_peer", "verify_none"),
    "ssl_min_version": ("tlsv1.2", "tlsv1.3"),
    "ssl_cert_login_from": ("common_name", "distinguished_name"),
}

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


class _Invalid(Exception):
    """A value that does not parse; load_settings adds the setting's name and source."""


def parse_bool(value: Any) -> bool:
    """true/false, 1/0, yes/no, on/off in any case, or a TOML boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _Invalid(f"{value!r} is not a boolean (true/false, yes/no, on/off, 1/0)")


def parse_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip().replace("_", ""), 10)
        except ValueError:
            pass
    raise _Invalid(f"{value!r} is not an integer")


def parse_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Invalid(f"{value!r} is not a number") from None
    else:
        raise _Invalid(f"{value!r} is not a number")
    if number != number or number in (float("inf"), float("-inf")):
        raise _Invalid(f"{value!r} is not a finite number")
    return number


def parse_size(value: Any) -> int:
    """Bytes: an integer, or a number with a unit (kB/MB/GB are powers of 1000; k/KiB, M/MiB, G/GiB of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        digits = len(text) - len(text.lstrip("-0123456789."))
        number, unit = text[:digits], text[digits:].strip().lower()
        if number and unit in SIZE_UNITS:
            try:
                amount = decimal.Decimal(number) * SIZE_UNITS[unit]
            except decimal.InvalidOperation:
                amount = None
            if amount is not None and amount == amount.to_integral_value():
                return int(amount)
    raise _Invalid(f"{value!r} is not a size (bytes, or a number with a unit: kB, MB, GB, KiB, MiB, GiB)")


def parse_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Invalid(f"{value!r} is not a list of names (a TOML array of strings, or comma-separated)")


def parse_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid(f"{value!r} is not a string")


def parse_watermark(value: Any) -> str:
    """memory_high_watermark: a fraction of RAM (0 < x <= 1), or more than 1 or a size with a unit: bytes.

    Kept as text; server/memory_alarm.py turns it into bytes once it knows the machine's RAM."""
    if isinstance(value, str) and value.strip()[-1:].isalpha():
        parse_size(value)
        return value.strip()
    number = parse_float(value)
    if number <= 0:
        raise _Invalid(f"{value!r} is not a fraction of RAM above 0 nor an amount of bytes")
    return str(value).strip()


def parse_setting(name: str, value: Any) -> Any:
    """`value` (from TOML, the environment or a flag) as setting `name`'s type, checked against its range."""
    # With postponed annotations every field type is a string such as "int" or "tuple[str, ...]".
    kind = _KINDS[name]
    if name in SIZES:
        result: Any = parse_size(value)
    elif name == "memory_high_watermark":
        result = parse_watermark(value)
    elif kind == "bool":
        result = parse_bool(value)
    elif kind == "int":
        result = parse_int(value)
    elif kind == "float":
        result = parse_float(value)
    elif kind.startswith("tuple"):
        result = parse_tuple(value)
    else:
        result = parse_str(value)
    if name in CHOICES:
        canonical = {choice.lower(): choice for choice in CHOICES[name]}.get(result.strip().lower())
        if canonical is None:
            raise _Invalid(f"{value!r} is not one of {', '.join(CHOICES[name])}")
        result = canonical
    bounds = BOUNDS.get(name)
    if bounds is not None:
        if bounds.minimum is not None and result < bounds.minimum:
            raise _Invalid(f"{value!r} is below the minimum {bounds.minimum}")
        if bounds.maximum is not None and result > bounds.maximum:
            raise _Invalid(f"{value!r} is above the maximum {bounds.maximum}")
    return result


_KINDS = {f.name: str(f.type) for f in fields(Settings)}


def check_setting(name: str, value: Any, source: str) -> Any:
    """`value` parsed and checked as setting `name`; SettingsError naming the setting and `source` if it is not."""
    if name not in _KINDS:
        raise SettingsError(name, source, "no such setting")
    try:
        return parse_setting(name, value)
    except _Invalid as exc:
        raise SettingsError(name, source, str(exc)) from None


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from the layers in order; later layers win. `overrides` are CLI flags (None = not given).

    Every value is parsed strictly and range-checked; the first bad one raises SettingsError naming the
    setting and its source (the file, the LEVERET_* variable or the --flag).
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        source = f"file {config_file}"
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise SettingsError("--config", source, f"cannot read it: {reason}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError("--config", source, f"not valid TOML: {exc}") from None
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in _KINDS:
                raise SettingsError(key, source, "no such setting")
            values[name] = check_setting(name, value, f"{source}, key {key}")
    env = os.environ if environ is None else environ
    for name in _KINDS:
        variable = "LEVERET_" + name.upper()
        raw = env.get(variable)
        if raw is not None:
            values[name] = check_setting(name, raw, f"environment variable {variable}")
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = check_setting(name, value, "flag --" + name.replace("_", "-"))
    settings = Settings(**values)
    check_tls_settings(settings)
    return settings


def check_tls_settings(settings: Settings) -> None:
    """The ssl_* settings that only make sense together: a SettingsError for the first that is missing.

    Whether the files exist and hold a certificate and its key is checked when the listener is built
    (server/tls.py), with the same one-line error."""
    if settings.ssl_port < 0 and settings.port < 0:
        raise SettingsError("port", "ssl_port is off", "negative turns off the only AMQP listener")
    if settings.ssl_port < 0 and not settings.http_ssl:
        return
    for name in ("ssl_certfile", "ssl_keyfile"):
        if not getattr(settings, name):
            if settings.ssl_port >= 0:
                raise SettingsError(name, "ssl_port is set", "the amqps listener needs it (a PEM file)")
            raise SettingsError(name, "http_ssl is on", "the management API's HTTPS needs it (a PEM file)")
    if settings.ssl_verify == "verify_peer" and not settings.ssl_cacertfile:
        raise SettingsError("ssl_cacertfile", "ssl_verify is verify_peer",
                            "client certificates are verified against it (a PEM file of CA certificates)")
