"""The embedded broker leaves nothing behind, even when it cannot start."""

from __future__ import annotations

import os
import socket

import pytest

from leveret.embedded import EmbeddedBroker


def test_a_broker_that_cannot_start_removes_the_data_directory_it_made() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        broker = EmbeddedBroker(port=taken.getsockname()[1])
        assert os.path.isdir(broker.data_dir)
        with pytest.raises(RuntimeError, match="failed to start"):
            broker.start()
    finally:
        taken.close()
    assert not os.path.exists(broker.data_dir)  # a `with` block never began, so no stop() would clean it


def test_a_stopped_broker_removes_the_data_directory_it_made() -> None:
    with EmbeddedBroker() as broker:
        assert os.path.isdir(broker.data_dir)
    assert not os.path.exists(broker.data_dir)
