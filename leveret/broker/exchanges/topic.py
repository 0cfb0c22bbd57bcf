"""Topic exchanges: a trie over dot-separated words with `*` (exactly one word) and `#` (zero or more).

A publish walks the trie once along the routing key's words instead of testing every binding. The walk
remembers (node, position) pairs it has visited so patterns with several `#` stay polynomial. Results
are cached per routing key (the cache is dropped whenever bindings change) because publishers
typically reuse a handful of keys.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from leveret.broker.exchanges.base import Arguments, CountedDestinations, Exchange

_CACHE_LIMIT = 4096


def split_words(key: str) -> list[str]:
    """RabbitMQ splits "" into zero words (so "#" matches it and "*" does not)."""
    return key.split(".") if key else []


class _Node:
    """One trie node: children by word (literal, "*" or "#") and destinations ending here."""

    __slots__ = ("children", "destinations")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.destinations = CountedDestinations()


class TopicExchange(Exchange):
    """Routes by pattern match of binding keys against the routing key."""

    type_name = "topic"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._root = _Node()
        self._cache: dict[str, tuple[Any, ...]] = {}

    def _add(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        node = self._root
        for word in split_words(routing_key):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
        node.destinations.add(destination)
        self._cache.clear()

    def _remove(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        path = [self._root]
        words = split_words(routing_key)
        for word in words:
            child = path[-1].children.get(word)
            if child is None:
                return
            path.append(child)
        path[-1].destinations.remove(destination)
        # prune nodes that no longer lead anywhere, deepest first
        for depth in range(len(words), 0, -1):
            node = path[depth]
            if node.children or node.destinations:
                break
            del path[depth - 1].children[words[depth - 1]]
        self._cache.clear()

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        cached = self._cache.get(routing_key)
        if cached is not None:
            return cached
        result = tuple(self._match(split_words(routing_key)))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[routing_key] = result
        return result

    def _match(self, words: list[str]) -> dict[Any, None]:
        found: dict[Any, None] = {}
        n = len(words)
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            mark = (id(node), i)
            if mark in seen:
                continue
            seen.add(mark)
            if i == n and node.destinations:
                found.update(dict.fromkeys(node.destinations.counts))
            children = node.children
            if not children:
                continue
            hash_node = children.get("#")
            if hash_node is not None:
                # "#" swallows zero or more of the remaining words
                for j in range(i, n + 1):
                    stack.append((hash_node, j))
            if i < n:
                child = children.get(words[i])
                if child is not None:
                    stack.append((child, i + 1))
                star = children.get("*")
                if star is not None:
                    stack.append((star, i + 1))
        return found
