"""Durable definitions: an append log of changes with checksums, compacted into snapshots.

Files in the data directory (record layout in format.py):

* ``definitions.snap``: the whole state as one KIND_DEFINITION record per definition; written as
  ``definitions.snap.tmp``, fsynced, renamed, directory fsynced.
* ``definitions.log``: one record per change since that snapshot, each fsynced before the call
  returns, so a declare-ok is only sent for a definition that survives a crash.

Both files carry a generation number in the base-offset field of their header. Compaction writes
the snapshot of generation g+1 first and then a fresh, empty log of generation g+1; a log older
than the snapshot is stale (a crash came between the two steps) and is ignored. The log is
compacted once it outgrows max(COMPACT_MIN_BYTES, size of the snapshot), so n declares in a row
write O(n) bytes in total, not O(n^2) as rewriting a snapshot per change would.

A failed write or fsync (a full disk) makes the change fail with OSError and leaves the in-memory state as
it was: the record is cut off again (ftruncate) and, since a file whose fsync failed is not trusted, the
next change first compacts (a fresh snapshot and an empty log) before it appends. The broker turns the
error into 541 INTERNAL_ERROR and undoes its model change, so the model stays what the disk holds.

Argument tables may hold values JSON lacks; they are tagged: ``{"$bytes": base64}``,
``{"$decimal": "1.5"}``, ``{"$datetime": iso}``, and a dict that looks like a tag is wrapped as
``{"$dict": {...}}``. A value nested deeper than api.JSON_DEPTH (a client may nest tables as deep as
its frame allows) is written as ``{"$flat": [tokens]}``, the flat preorder walk of store/values.py,
because Python's json recurses.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import json
import os
import time
from typing import Any

from leveret.store.api import (
    JSON_DEPTH,
    BindingDef,
    Definitions,
    ExchangeDef,
    GlobalParameterDef,
    OperatorPolicyDef,
    ParameterDef,
    PermissionDef,
    PolicyDef,
    QueueDef,
    TopicPermissionDef,
    UserDef,
    VHostDef,
)
from leveret.store.commit import Seam, SeamHook, no_seam
from leveret.store.format import (
    KIND_DEFINITION,
    RECORD_HEADER,
    RECORD_TRAILER,
    SEGMENT_HEADER,
    TMP_SUFFIX,
    TORN_INFIX,
    decode_segment_header,
    encode_record,
    encode_segment_header,
)
from leveret.store.fsio import APPEND_FLAGS, REAL, FileIO, failures
from leveret.store.recovery import Damage, RecoveryReport, note_damage, truncate_torn_tail
from leveret.store.resync import BufferWindow, scan_records
from leveret.store.values import deeper_than, flatten, unflatten

LOG_FILE = "definitions.log"
SNAPSHOT_FILE = "definitions.snap"
COMPACT_MIN_BYTES = 256 * 1024

_TYPES: dict[str, type] = {
    "vhost": VHostDef,
    "user": UserDef,
    "permission": PermissionDef,
    "topic_permission": TopicPermissionDef,
    "exchange": ExchangeDef,
    "queue": QueueDef,
    "binding": BindingDef,
    "policy": PolicyDef,
    "operator_policy": OperatorPolicyDef,
    "parameter": ParameterDef,
    "global_parameter": GlobalParameterDef,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}
_TAGS = ("$bytes", "$decimal", "$datetime", "$dict", "$flat")


def encode_value(value: Any) -> Any:
    """A JSON-ready form of an argument value (see the module docstring for the tags)."""
    if isinstance(value, dict | list | tuple) and deeper_than(value, JSON_DEPTH):
        return {"$flat": flatten(value, scalar=_encode_shallow)}
    return _encode_shallow(value)


def _encode_shallow(value: Any) -> Any:
    """encode_value for a value known to nest at most JSON_DEPTH levels (so recursing is safe)."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        encoded = {str(k): _encode_shallow(v) for k, v in value.items()}
        if len(encoded) == 1 and next(iter(encoded)) in _TAGS:
            return {"$dict": encoded}
        return encoded
    if isinstance(value, list | tuple):
        return [_encode_shallow(v) for v in value]
    raise TypeError(f"cannot store argument value {value!r}")


def decode_value(value: Any) -> Any:
    """The inverse of encode_value."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$bytes":
                return base64.b64decode(inner)
            if tag == "$decimal":
                return decimal.Decimal(inner)
            if tag == "$datetime":
                return datetime.datetime.fromisoformat(inner)
            if tag == "$dict":
                return {k: decode_value(v) for k, v in inner.items()}
            if tag == "$flat":
                return unflatten(inner, scalar=decode_value)
        return {k: decode_value(v) for k, v in value.items()}
    return value


def _encode_definition(value: Any) -> dict[str, Any]:
    fields = {f.name: encode_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return {"op": "put", "type": _NAMES[type(value)], "value": fields}


def _decode_definition(fields: dict[str, Any], kind: str) -> Any:
    cls = _TYPES[kind]
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in fields:
            v = decode_value(fields[f.name])
            values[f.name] = tuple(v) if f.name == "tags" else v
    return cls(**values)


def _apply(defs: Definitions, op: dict[str, Any]) -> None:
    kind = op["type"]
    if op["op"] == "put":
        defs.apply_put(_decode_definition(op["value"], kind))
    else:
        defs.apply_delete(kind, tuple(op["key"]))


class FileDefinitionStore:
    """api.DefinitionStore on disk; every change is fsynced before the call returns."""

    def __init__(self, data_dir: str, *, seam: SeamHook = no_seam, compact_min_bytes: int = COMPACT_MIN_BYTES,
                 file_io: FileIO = REAL) -> None:
        self.data_dir = data_dir
        self.io = file_io
        self._untrusted = False  # a write or fsync of the log failed: compact before the next append
        self._seam = seam
        self._compact_min = compact_min_bytes
        self._log_path = os.path.join(data_dir, LOG_FILE)
        self._snap_path = os.path.join(data_dir, SNAPSHOT_FILE)
        os.makedirs(data_dir, exist_ok=True)
        self.report = RecoveryReport()
        self.bytes_written = 0  # every byte this store wrote (log records, snapshots), for tests
        started = time.perf_counter()
        self._defs = Definitions()
        self._generation = 0
        self._snap_size = 0
        self._next_seq = 0
        self._remove_tmp()
        self._load_snapshot()
        log_ok = self._load_log()
        if not log_ok:
            self._reset_log()
        self._fd = self.io.open(self._log_path, APPEND_FLAGS)
        self._log_size = os.path.getsize(self._log_path)
        # Past every sequence number in the log, even when damage hid some records.
        self._seq = max(self._log_records, self._next_seq)
        self.report.seconds += time.perf_counter() - started

    # -- loading ----------------------------------------------------------------------------------

    def _remove_tmp(self) -> None:
        for name in (LOG_FILE + TMP_SUFFIX, SNAPSHOT_FILE + TMP_SUFFIX):
            path = os.path.join(self.data_dir, name)
            if os.path.exists(path):
                os.unlink(path)
                self.report.stale_tmp_files.append(path)

    def _records(self, path: str) -> tuple[int | None, list[dict[str, Any]], int | None]:
        """(generation, ops, torn position) of a definitions file; damaged records reported and skipped."""
        with open(path, "rb") as f:
            data = f.read()
        generation = decode_segment_header(data)
        if generation is None:
            return None, [], None
        ops = []

        def note(offset: int, _timestamp: int, position: int, size: int) -> None:
            payload = data[position + RECORD_HEADER.size : position + size - RECORD_TRAILER.size]
            self._next_seq = max(self._next_seq, offset + 1)
            self.report.records += 1
            try:
                ops.append(json.loads(payload))
            except ValueError:
                note_damage(self.report.corrupt_records, Damage(path, position, size, "bad json"))

        def skip(position: int, length: int, reason: str) -> None:
            note_damage(self.report.corrupt_records, Damage(path, position, length, reason))

        # Not `increasing`: logs written before sequence numbers were kept monotonic may repeat one.
        end, torn = scan_records(BufferWindow(data), SEGMENT_HEADER.size, note, skip, increasing=False)
        return generation, ops, (end if torn is not None else None)

    def _load_snapshot(self) -> None:
        if not os.path.exists(self._snap_path):
            return
        generation, ops, torn = self._records(self._snap_path)
        if generation is None:
            self.report.unreadable_segments.append(self._snap_path)
            return
        if torn is not None:
            note_damage(self.report.torn_tails,
                        Damage(self._snap_path, torn, os.path.getsize(self._snap_path) - torn, "torn"))
        self._generation = generation
        self._snap_size = os.path.getsize(self._snap_path)
        for op in ops:
            _apply(self._defs, op)

    def _load_log(self) -> bool:
        """Replay the log; False if it is missing, unreadable or stale (then it is reset)."""
        self._log_records = 0
        self._next_seq = 0  # the snapshot's sequence numbers are its own
        if not os.path.exists(self._log_path):
            return False
        generation, ops, torn = self._records(self._log_path)
        if generation is None:
            # Not ours (or its header was hit): keep it for inspection rather than overwrite it.
            aside = f"{self._log_path}{TORN_INFIX}{int(time.time() * 1000)}"
            self.io.rename(self._log_path, aside)
            self.report.unreadable_segments.append(self._log_path)
            self.report.torn_copies.append(aside)
            return False
        if generation < self._generation:
            return False
        if torn is not None:
            truncate_torn_tail(self._log_path, torn, self.report, "torn definitions record")
        for op in ops:
            _apply(self._defs, op)
        self._log_records = len(ops)
        return True

    def _reset_log(self) -> None:
        self.io.write_atomically(self._log_path, encode_segment_header(self._generation))
        self.bytes_written += SEGMENT_HEADER.size

    # -- writing ----------------------------------------------------------------------------------

    def _write(self, op: dict[str, Any]) -> None:
        if self._untrusted:
            self.compact()  # raises while the disk still refuses; then nothing of `op` is applied
        record = encode_record(KIND_DEFINITION, 0, self._seq, int(time.time() * 1000), json.dumps(op).encode())
        try:
            self.io.write_all(self._fd, record)
            self._seam(Seam.AFTER_DEFINITION_WRITE)
            self.io.fdatasync(self._fd)
        except OSError as exc:
            failures.note("write of definitions", exc)
            # Cut the record off; after a failed fsync the file is not trusted whatever the cut does.
            self._untrusted = True
            try:
                self.io.ftruncate(self._fd, self._log_size)
            except OSError:
                pass
            raise
        self._seq += 1
        self._log_size += len(record)
        self.bytes_written += len(record)
        _apply(self._defs, op)
        if self._log_size > max(self._compact_min, self._snap_size):
            try:
                self.compact()
            except OSError as exc:
                # The change itself is durable; compaction is retried before the next append.
                failures.note("compaction of definitions", exc)

    def compact(self) -> None:
        """Write the current state as a snapshot of the next generation and start an empty log.

        Safe to repeat after a failure at any step: a snapshot renamed into place before the log was reset
        makes the old log stale (ignored at load), and the retry writes both again."""
        self._untrusted = True
        generation = self._generation + 1
        parts = [encode_segment_header(generation)]
        d = self._defs
        now = int(time.time() * 1000)
        tables = (d.vhosts, d.users, d.permissions, d.topic_permissions, d.exchanges, d.queues, d.bindings,
                  d.policies, d.operator_policies, d.parameters, d.global_parameters)
        for seq, value in enumerate(v for table in tables for v in table.values()):
            parts.append(encode_record(KIND_DEFINITION, 0, seq, now, json.dumps(_encode_definition(value)).encode()))
        data = b"".join(parts)
        tmp = self._snap_path + TMP_SUFFIX
        self.io.write_file(tmp, data)
        self._seam(Seam.AFTER_TMP_WRITE)
        self.io.rename(tmp, self._snap_path)
        self._generation = generation
        self.io.sync_directory(self.data_dir)
        self.bytes_written += len(data)
        self._snap_size = len(data)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._reset_log()
        self._fd = self.io.open(self._log_path, APPEND_FLAGS)
        self._log_size = SEGMENT_HEADER.size
        self._seq = 0
        self._untrusted = False

    # -- api.DefinitionStore ----------------------------------------------------------------------

    def load(self) -> Definitions:
        return self._defs.copy()

    def _put(self, value: Any) -> None:
        self._write(_encode_definition(value))

    def _delete(self, kind: str, key: tuple) -> None:
        self._write({"op": "delete", "type": kind, "key": list(key)})

    def put_vhost(self, vhost: VHostDef) -> None:
        self._put(vhost)

    def delete_vhost(self, name: str) -> None:
        self._delete("vhost", (name,))

    def put_user(self, user: UserDef) -> None:
        self._put(user)

    def delete_user(self, name: str) -> None:
        self._delete("user", (name,))

    def put_permission(self, permission: PermissionDef) -> None:
        self._put(permission)

    def delete_permission(self, user: str, vhost: str) -> None:
        self._delete("permission", (user, vhost))

    def put_topic_permission(self, permission: TopicPermissionDef) -> None:
        self._put(permission)

    def delete_topic_permission(self, user: str, vhost: str, exchange: str) -> None:
        self._delete("topic_permission", (user, vhost, exchange))

    def put_exchange(self, exchange: ExchangeDef) -> None:
        self._put(exchange)

    def delete_exchange(self, vhost: str, name: str) -> None:
        self._delete("exchange", (vhost, name))

    def put_queue(self, queue: QueueDef) -> None:
        self._put(queue)

    def delete_queue(self, vhost: str, name: str) -> None:
        self._delete("queue", (vhost, name))

    def put_binding(self, binding: BindingDef) -> None:
        self._put(binding)

    def delete_binding(self, binding: BindingDef) -> None:
        self._delete("binding", binding.key())

    def put_policy(self, policy: PolicyDef) -> None:
        self._put(policy)

    def delete_policy(self, vhost: str, name: str) -> None:
        self._delete("policy", (vhost, name))

    def put_operator_policy(self, policy: OperatorPolicyDef) -> None:
        self._put(policy)

    def delete_operator_policy(self, vhost: str, name: str) -> None:
        self._delete("operator_policy", (vhost, name))

    def put_parameter(self, parameter: ParameterDef) -> None:
        self._put(parameter)

    def delete_parameter(self, vhost: str, component: str, name: str) -> None:
        self._delete("parameter", (vhost, component, name))

    def put_global_parameter(self, parameter: GlobalParameterDef) -> None:
        self._put(parameter)

    def delete_global_parameter(self, name: str) -> None:
        self._delete("global_parameter", (name,))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
