"""Listeners (server/listeners.py): the AMQP one binds, reports its port and stops accepting; the server
starts and stops every listener, and a listener that cannot bind undoes the whole start."""

from __future__ import annotations

import asyncio
import socket

import psutil
import pytest

from leveret.config import Settings
from leveret.server.app import ListenError, Server
from leveret.server.listeners import AMQPListener


def _connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def _listening_here(port: int) -> bool:
    """True while this process has a socket listening on `port`. (Connecting to a stopped listener's port
    would not tell: another test's broker may have been given that free port meanwhile.)"""
    own = psutil.Process()
    listing = own.net_connections(kind="tcp") if hasattr(own, "net_connections") else own.connections(kind="tcp")
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in listing)


def test_the_amqp_listener_reports_its_port_and_stops_accepting() -> None:
    async def scenario() -> tuple[int, bool, bool]:
        accepted: list[asyncio.Protocol] = []
        accepting = asyncio.Event()

        def factory() -> asyncio.Protocol:
            accepted.append(asyncio.Protocol())
            accepting.set()
            return accepted[-1]

        listener = AMQPListener(asyncio.get_running_loop(), factory)
        port = await listener.start("127.0.0.1", 0)
        before = await asyncio.to_thread(_connect, port) and _listening_here(port)
        await asyncio.wait_for(accepting.wait(), 5)  # the loop takes the connection in its own time
        await listener.stop()
        after = _listening_here(port)
        return port, before and len(accepted) == 1, after

    port, served, after_stop = asyncio.run(scenario())
    assert port > 0 and served and not after_stop


def test_a_taken_http_port_leaves_no_listener_behind(tmp_path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    http_port = taken.getsockname()[1]
    settings = Settings(port=0, http_port=http_port, http_host="127.0.0.1", host="127.0.0.1",
                        data_dir=str(tmp_path / "data"))

    async def scenario() -> tuple[int, list]:
        server = Server(settings)
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{http_port}: address already in use"):
            await server.start()
        return server.port, server.listeners

    try:
        amqp_port, listeners = asyncio.run(scenario())
    finally:
        taken.close()
    assert amqp_port > 0 and listeners == []
    assert not _listening_here(amqp_port)  # the AMQP listener that had started was stopped again
