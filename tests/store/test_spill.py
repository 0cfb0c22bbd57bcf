"""FileSpill: batches come back oldest first, and the files go as soon as they are drained."""

from __future__ import annotations

import marshal
import os

import pytest

from leveret.store.filestore import FileMessageStore
from leveret.store.spill import FileSpill


def _batch(tag: str, n: int) -> list:
    return [("ex", f"{tag}.{i}", b"\x80\x00\x01", f"{tag}-{i}".encode() * 20) for i in range(n)]


def test_batches_come_back_in_order_with_every_field(tmp_path) -> None:
    spill = FileSpill(str(tmp_path / "s"))
    batches = [_batch(f"b{i}", 50) for i in range(5)]
    for batch in batches:
        spill.push(batch)
    assert len(spill) == 5
    out = [spill.pop() for _ in range(5)]
    assert out == batches
    assert len(spill) == 0
    with pytest.raises(IndexError):
        spill.pop()


def test_drained_files_are_deleted_while_the_spill_keeps_flowing(tmp_path) -> None:
    directory = tmp_path / "s"
    spill = FileSpill(str(directory), file_size=4096)
    expected = []
    for i in range(40):
        batch = _batch(f"b{i}", 5)  # ~1.2 KB each: several files
        spill.push(batch)
        expected.append(batch)
        if i % 2:
            assert spill.pop() == expected.pop(0)  # pushes outrun pops: the backlog never empties
    files_before = len(os.listdir(directory))
    assert 1 <= files_before <= 7  # only the files still holding the 20 undrained batches
    while expected:
        assert spill.pop() == expected.pop(0)
    assert os.listdir(directory) == []


def test_delete_removes_everything(tmp_path) -> None:
    directory = tmp_path / "s"
    spill = FileSpill(str(directory), file_size=2048)
    for i in range(6):
        spill.push(_batch(f"b{i}", 5))
    spill.delete()
    assert spill.deleted and len(spill) == 0 and not directory.exists()


def test_spills_are_wiped_at_the_next_start(tmp_path) -> None:
    store = FileMessageStore(str(tmp_path / "messages"))
    spill = store.open_spill()
    spill.push(_batch("x", 3))
    directory = spill.directory
    assert os.listdir(directory)
    store.close()
    FileMessageStore(str(tmp_path / "messages")).close()
    assert not os.path.exists(directory)


def test_a_batch_damaged_behind_its_back_comes_back_as_placeholders(tmp_path) -> None:
    directory = tmp_path / "s"
    spill = FileSpill(str(directory), file_size=1 << 20)
    first, second, third = _batch("a", 4), _batch("b", 3), _batch("c", 5)
    for batch in (first, second, third):
        spill.push(batch)
    (path,) = [directory / name for name in os.listdir(directory)]
    with open(path, "r+b") as f:  # overwrite the middle of the second batch
        f.seek(len(marshal.dumps(first)) + 10)
        f.write(b"\xff" * 40)
    assert spill.pop() == first
    assert spill.pop() == [None, None, None]
    assert spill.pop() == third
    assert os.listdir(directory) == []
