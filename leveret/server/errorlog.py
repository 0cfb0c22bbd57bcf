"""Logging of what clients do wrong: one line per event, never a traceback, and rate-limited.

A client's bad input costs it a close; it must not cost the broker a log that grows with the input.
So every connection-level error a client causes is one line naming the peer, the reply code and the
reply text; channel errors, refused logins and dropped connections are one line each too. Every line
goes through one token bucket per server (`burst` lines at once, then `rate` per second): a client
that reconnects and misbehaves in a loop fills at most that much log, and the next line that gets
through says how many were suppressed.

An exception that escapes the protocol code on client input is a bug in leveret, not the client's
fault. It is logged as one ERROR line (exception type, message and the innermost few frames as
file:line) on the logger `leveret.internal`, whose records carry `internal_error=True` so that the
test suite can fail any test during which one was logged.
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any, Callable

log = logging.getLogger("leveret.connection")
internal_log = logging.getLogger("leveret.internal")

# How many lines may be written at once, and how many per second after that.
BURST = 50
RATE = 5.0
# Innermost frames named in an internal-error line.
_WHERE_FRAMES = 3


# An exception's message is cut to this many characters (it may quote client input).
_MAX_MESSAGE = 300


def peer_name(peer: Any) -> str:
    """host:port for a TCP peer address, the address as given otherwise."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else "(local)"


def where(exc: BaseException) -> str:
    """The innermost frames of exc's traceback as "file:line func" joined by " < " (one line)."""
    frames = traceback.extract_tb(exc.__traceback__)[-_WHERE_FRAMES:]
    return " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))


class ErrorLog:
    """Rate-limited, one-line logging of client errors for one server."""

    def __init__(self, monotonic: Callable[[], float], burst: int = BURST, rate: float = RATE) -> None:
        self._monotonic = monotonic
        self._burst = burst
        self._rate = rate
        self._tokens = float(burst)
        self._last = monotonic()
        self.suppressed = 0  # lines dropped since the last one written

    def _admit(self) -> int | None:
        """Take a token: None when the line must be dropped, else how many were dropped before it."""
        now = self._monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            self.suppressed += 1
            return None
        self._tokens -= 1.0
        dropped, self.suppressed = self.suppressed, 0
        return dropped

    def _emit(self, logger: logging.Logger, level: int, message: str, args: tuple, **extra: Any) -> None:
        if not logger.isEnabledFor(level):
            return
        dropped = self._admit()
        if dropped is None:
            return
        if dropped:
            message += " (%d similar lines suppressed before this one)"
            args = (*args, dropped)
        logger.log(level, message, *args, extra=extra or None)

    def connection_error(self, peer: Any, name: str, code: int, text: str, detail: str = "") -> None:
        """A connection closed because of what the client sent (one line per connection)."""
        if detail:
            self._emit(log, logging.WARNING, "closing connection %s%s: %d %s (%s)",
                       (peer_name(peer), _named(name), code, text, detail))
        else:
            self._emit(log, logging.WARNING, "closing connection %s%s: %d %s",
                       (peer_name(peer), _named(name), code, text))

    def channel_error(self, peer: Any, name: str, channel: int, code: int, text: str) -> None:
        """A channel closed because of what the client asked for."""
        self._emit(log, logging.INFO, "closing channel %d of connection %s%s: %d %s",
                   (channel, peer_name(peer), _named(name), code, text))

    def warning(self, message: str, *args: Any) -> None:
        """Any other one-line warning caused by a client (refused login, missed heartbeats, ...)."""
        self._emit(log, logging.WARNING, message, args)

    def error(self, message: str, *args: Any) -> None:
        """A one-line error a client's request ran into (a failed store write, ...)."""
        self._emit(log, logging.ERROR, message, args)

    def internal_error(self, peer: Any, name: str, exc: BaseException) -> None:
        """An unexpected exception while handling client input: a leveret bug, one ERROR line."""
        self._emit(
            internal_log, logging.ERROR, "internal error on connection %s%s, closing it with 541: %s: %s at %s",
            (peer_name(peer), _named(name), type(exc).__name__, str(exc)[:_MAX_MESSAGE], where(exc)),
            internal_error=True,
        )


def _named(name: str) -> str:
    return f" ({name})" if name else ""
