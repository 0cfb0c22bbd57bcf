"""Permission regular expressions as RabbitMQ matches them.

RabbitMQ runs `re:run(Name, Regex)` on the resource name: an unanchored search (a pattern "foo" grants
"xfoox"; anchors are the pattern's own business), over bytes without the unicode option, and the empty
pattern stands for "^$", which no resource name matches. Python's `re` on bytes is the closest match to
Erlang's PCRE (differences in exotic syntax are listed in docs/security.md).

Topic permissions expand `{username}`, `{vhost}` (and, for protocols that have one, `{client_id}`) in the
pattern before matching the routing key; a variable the caller does not supply stays literal, as in
RabbitMQ 3.10, whose AMQP 0-9-1 connections supply only username and vhost.
"""

from __future__ import annotations

import re
from functools import lru_cache

EMPTY_MEANS = b"^$"


@lru_cache(maxsize=4096)
def compiled(pattern: str) -> re.Pattern[bytes]:
    """The compiled form of a permission pattern (cached: every user and channel shares it)."""
    source = pattern.encode("utf-8") if pattern else EMPTY_MEANS
    return re.compile(source)


def check_pattern(pattern: str) -> str | None:
    """Why `pattern` is not a usable permission pattern, or None when it is."""
    try:
        compiled(pattern)
    except re.error as exc:
        return f"invalid regular expression {pattern!r}: {exc}"
    return None


def matches(pattern: str, name: str) -> bool:
    return compiled(pattern).search(name.encode("utf-8")) is not None


def expand(pattern: str, variables: dict[str, str]) -> str:
    """`pattern` with each `{name}` of `variables` replaced by its value (no escaping, as RabbitMQ)."""
    for name, value in variables.items():
        pattern = pattern.replace("{" + name + "}", value)
    return pattern
