"""Recovery resynchronises after damage in every kind of log file: what is intact after it is kept.

Each kind of file (a queue's segment, its ack file, a stream's log, a delayed exchange's store, the
definitions log, a stream's tracked offsets) is written clean, damaged before, between or after its
valid records (a flipped header byte, a flipped payload byte, or garbage with an impossible length
inserted), and reopened. Recovery must keep every record whose bytes are intact, report and log the
damaged region once with its exact byte range, and cut a damaged tail off in place.
"""

from __future__ import annotations

import logging
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leveret.store.api import QueueDef
from leveret.store.definitions import LOG_FILE, FileDefinitionStore
from leveret.store.filestore import FileMessageStore
from leveret.store.format import (
    ACK_RECORD,
    RECORD_HEADER,
    RECORD_MAGIC,
    SEGMENT_HEADER,
    decode_header,
    encode_record,
)
from leveret.store.resync import BufferWindow, scan_records
from leveret.store.stream import OFFSETS_FILE, FileStreamStore

N = 6
PROPS = b"\x10\x00\x02"
# A record header claiming a payload far larger than any file here, then filler: damage whose
# length field is impossible, so only resynchronisation can find the records behind it.
GARBAGE = struct.pack("<BBBBI", RECORD_MAGIC, 1, 1, 0, 0x3FFFFFF0) + b"\x5a" * 40


def body(i: int) -> bytes:
    return b"message-%d-" % i + b"x" * (i * 7)


def only(directory: str, suffix: str) -> str:
    (name,) = [n for n in os.listdir(directory) if n.endswith(suffix)]
    return os.path.join(directory, name)


def record_spans(path: str, start: int) -> list[tuple[int, int]]:
    """(position, size) of each record of a clean file."""
    with open(path, "rb") as f:
        data = f.read()
    spans = []
    pos = start
    while pos < len(data):
        header = decode_header(data, pos)
        assert header is not None
        spans.append((pos, header.size))
        pos += header.size
    return spans


class QueueSegment:
    """Records of a durable queue's segment; read back as the bodies of the unacked messages."""

    name = "queue"
    queue_name = "work"

    def write(self, root: str) -> tuple[str, list[tuple[int, int]]]:
        store = FileMessageStore(root)
        queue = store.open_queue("/", self.queue_name)
        for i in range(N):
            queue.append("", self.queue_name, PROPS, body(i), 1000 + i)
        store.sync()
        queue.log.close()  # a crash, not a clean close: no clean index to trust
        path = only(queue.directory, ".seg")
        return path, record_spans(path, SEGMENT_HEADER.size)

    def read(self, root: str) -> list[int]:
        store = FileMessageStore(root)
        queue = store.open_queue("/", self.queue_name)
        got = [int(m.body.split(b"-")[1]) for _, m in queue.recover()]
        queue.log.close()
        return got


class DelayedStore(QueueSegment):
    """A durable delayed-message exchange keeps its pending messages in a queue store of its own."""

    name = "delayed"
    queue_name = "amq.delayed-exchange/delays"


class StreamLog:
    name = "stream"

    def write(self, root: str) -> tuple[str, list[tuple[int, int]]]:
        stream = FileStreamStore(os.path.join(root, "s"))
        for i in range(N):
            stream.append("", "s", PROPS, body(i), 1000 + i)
        stream.sync()
        stream.close()
        path = only(os.path.join(root, "s"), ".seg")
        return path, record_spans(path, SEGMENT_HEADER.size)

    def read(self, root: str) -> list[int]:
        stream = FileStreamStore(os.path.join(root, "s"))
        got = [int(m.body.split(b"-")[1]) for m in stream.read_from(0)]
        stream.close()
        return got


class DefinitionsLog:
    name = "definitions"

    def write(self, root: str) -> tuple[str, list[tuple[int, int]]]:
        defs = FileDefinitionStore(root)
        for i in range(N):
            defs.put_queue(QueueDef("/", f"q-{i}", durable=True))
        defs.close()
        path = os.path.join(root, LOG_FILE)
        return path, record_spans(path, SEGMENT_HEADER.size)

    def read(self, root: str) -> list[int]:
        defs = FileDefinitionStore(root)
        got = sorted(int(name.split("-")[1]) for (_vhost, name) in defs.load().queues)
        defs.close()
        return got

    def check_after(self, root: str) -> None:
        # The sequence continues past every record kept, so a later put is never shadowed by one.
        defs = FileDefinitionStore(root)
        defs.put_queue(QueueDef("/", "later", durable=True))
        defs.close()
        again = FileDefinitionStore(root)
        assert ("/", "later") in again.load().queues
        again.close()


class StreamOffsets:
    name = "offsets"

    def write(self, root: str) -> tuple[str, list[tuple[int, int]]]:
        stream = FileStreamStore(os.path.join(root, "s"))
        stream.append("", "s", PROPS, b"m", 1)
        for i in range(N):
            stream.track_offset(f"consumer-{i}", 100 + i)
        stream.sync()
        stream.close()
        path = os.path.join(root, "s", OFFSETS_FILE)
        return path, record_spans(path, 0)

    def read(self, root: str) -> list[int]:
        stream = FileStreamStore(os.path.join(root, "s"))
        got = [i for i in range(N) if stream.tracked_offset(f"consumer-{i}") == 100 + i]
        stream.close()
        return got


KINDS = [QueueSegment(), DelayedStore(), StreamLog(), DefinitionsLog(), StreamOffsets()]
WHERE = {"before": 0, "between": N // 2, "after": N - 1}


def flip(path: str, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0x55]))


def insert(path: str, position: int, data: bytes) -> None:
    with open(path, "rb") as f:
        content = f.read()
    with open(path, "wb") as f:
        f.write(content[:position] + data + content[position:])


def dropped_lines(caplog, path: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dropped bytes" in r.getMessage() and path in r.getMessage()]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize("damage", ["header", "payload", "garbage"])
def test_damage_is_skipped_and_every_intact_record_kept(tmp_path, caplog, kind, where, damage):
    root = str(tmp_path)
    path, spans = kind.write(root)
    target = WHERE[where]
    position, size = spans[target]
    end_of_file = spans[-1][0] + spans[-1][1]
    if damage == "garbage":
        # Inserted before the target record, or after the last one for "after".
        at = end_of_file if where == "after" else position
        insert(path, at, GARBAGE)
        lost: set[int] = set()
        region = (at, len(GARBAGE))
    else:
        flip(path, position + (5 if damage == "header" else RECORD_HEADER.size + 3))
        lost = {target}
        region = (position, size)
    torn = where == "after"
    with caplog.at_level(logging.WARNING, logger="leveret.recovery"):
        got = kind.read(root)
    assert got == [i for i in range(N) if i not in lost]
    start, length = region
    assert dropped_lines(caplog, path) == [
        f"recovery dropped bytes {start}-{start + length} of {path} ({length} bytes: {reason})"
        for reason in [_reason_in(caplog, path)]
    ]
    if torn:
        assert os.path.getsize(path) == start  # cut off in place
    else:
        assert os.path.getsize(path) == end_of_file + (len(GARBAGE) if damage == "garbage" else 0)
    if hasattr(kind, "check_after"):
        kind.check_after(root)


def _reason_in(caplog, path: str) -> str:
    (line,) = dropped_lines(caplog, path)
    return line.rsplit(": ", 1)[1].rstrip(")")


def queue_with_acks(root: str, acked: list[int]) -> str:
    store = FileMessageStore(root)
    queue = store.open_queue("/", "q")
    for i in range(N):
        queue.append("", "q", PROPS, body(i), 1000 + i)
    store.sync()
    for offset in acked:
        assert queue.ack(offset)
    store.sync()
    queue.log.close()
    return only(queue.directory, ".ack")


def unacked(root: str) -> list[int]:
    store = FileMessageStore(root)
    queue = store.open_queue("/", "q")
    got = [offset for offset, _ in queue.recover()]
    queue.log.close()
    return got


@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize("damage", ["flip", "garbage"])
def test_ack_file_damage_keeps_the_acks_after_it(tmp_path, caplog, where, damage):
    root = str(tmp_path)
    acked = [0, 1, 2, 3, 4]
    ack_path = queue_with_acks(root, acked)
    target = WHERE[where] if where != "after" else len(acked) - 1
    position = target * ACK_RECORD.size
    if damage == "flip":
        flip(ack_path, position + 2)
        lost = {acked[target]}
        region = (position, ACK_RECORD.size)
    else:
        at = len(acked) * ACK_RECORD.size if where == "after" else position
        insert(ack_path, at, b"\x01\x02\x03\x04\x05")  # a torn 5-byte write, misaligning what follows
        lost = set()
        region = (at, 5)
    with caplog.at_level(logging.WARNING, logger="leveret.recovery"):
        got = unacked(root)
    # A lost ack re-delivers its message (at-least-once); every intact ack still holds.
    assert got == sorted(set(range(N)) - set(acked) | lost)
    (line,) = dropped_lines(caplog, ack_path)
    assert line.startswith(f"recovery dropped bytes {region[0]}-{region[0] + region[1]} of {ack_path} ")
    assert os.path.getsize(ack_path) == ACK_RECORD.size * (len(acked) - len(lost))


def test_offsets_stay_monotonic_after_a_hole_and_the_next_offset_follows_the_last_valid_record(tmp_path):
    root = str(tmp_path)
    kind = QueueSegment()
    path, spans = kind.write(root)
    flip(path, spans[2][0] + 5)  # offset 2 is gone, 3.. remain
    store = FileMessageStore(root)
    queue = store.open_queue("/", kind.queue_name)
    assert [o for o, _ in queue.recover()] == [0, 1, 3, 4, 5]
    assert queue.next_offset == N
    assert queue.append("", "q", PROPS, body(N), 2000) == N
    store.sync()
    with pytest.raises(KeyError):
        queue.read(2)
    assert queue.read(4).body == body(4)
    assert [o for o, _ in queue.recover()] == [0, 1, 3, 4, 5, N]
    queue.log.close()


# -- the scanner itself, under random corruption ---------------------------------------------------

def _encoded(n: int, sizes: list[int]) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    records = []
    parts = []
    pos = 0
    for offset, size in enumerate(sizes[:n]):
        payload = bytes((offset * 31 + j) % 251 for j in range(size))
        raw = encode_record(2, 0, offset, 1000 + offset, payload)
        records.append((pos, offset, raw))
        parts.append(raw)
        pos += len(raw)
    return b"".join(parts), records


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(0, 120), min_size=1, max_size=12),
    edits=st.lists(
        st.tuples(st.sampled_from(["flip", "zero", "insert", "delete"]), st.integers(0, 10_000), st.binary(min_size=1, max_size=40)),
        min_size=1, max_size=4,
    ),
)
def test_random_corruption_never_loses_an_intact_record_nor_invents_one(sizes, edits):
    data, records = _encoded(len(sizes), sizes)
    buf = bytearray(data)
    for op, where, blob in edits:
        at = where % (len(buf) + 1)
        if op == "flip" and at < len(buf):
            buf[at] ^= blob[0] | 1
        elif op == "zero":
            end = min(len(buf), at + len(blob))
            buf[at:end] = bytes(end - at)
        elif op == "insert":
            buf[at:at] = blob
        elif op == "delete":
            del buf[at : at + len(blob)]
    written = {offset: raw for _pos, offset, raw in records}
    got: list[tuple[int, int]] = []

    def note(offset: int, _ts: int, position: int, size: int) -> None:
        got.append((offset, position))
        # Never a record that was not written: the bytes found are exactly one written record.
        assert bytes(buf[position : position + size]) == written[offset]

    end, _torn = scan_records(BufferWindow(bytes(buf)), 0, note, lambda *a: None)
    found = {offset for offset, _ in got}
    offsets = [offset for offset, _ in got]
    assert offsets == sorted(set(offsets))  # monotonic, no duplicates
    for offset, raw in written.items():
        if raw in buf:  # its bytes survived the edits, wherever they now sit
            assert offset in found, (offset, got)
    assert end <= len(buf)
