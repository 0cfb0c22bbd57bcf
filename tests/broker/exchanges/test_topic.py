"""Topic trie matching: `*` is exactly one word, `#` zero or more, "" is zero words."""

import pytest

from leveret.broker.exchanges.topic import TopicExchange


def routes(bindings: list[str], key: str) -> set[str]:
    x = TopicExchange("t")
    for b in bindings:
        x.bind(b, b)
    return set(x.route(key, None))


@pytest.mark.parametrize(
    "pattern,key,matches",
    [
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
        ("*", "a", True),
        ("*", "", False),
        ("*", "a.b", False),
        ("a.*", "a", False),
        ("a.*", "a.b", True),
        ("a.*.c", "a.b.c", True),
        ("#", "", True),
        ("#", "a.b.c", True),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("a.#.b", "a.b", True),
        ("a.#.b", "a.x.y.b", True),
        ("a.#.b", "a.x.y.c", False),
        ("#.b", "b", True),
        ("#.b", "a.b.b", True),
        ("#.#", "", True),
        ("a.#.#.b", "a.b", True),
        ("*.#", "", False),
        ("*.#", "a", True),
        ("a..b", "a..b", True),
        ("a.*.b", "a..b", True),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_topic_pattern_matches_like_rabbitmq(pattern, key, matches):
    assert (pattern in routes([pattern], key)) is matches


def test_each_destination_is_routed_once_even_if_several_patterns_match():
    x = TopicExchange("t")
    x.bind("q", "a.*")
    x.bind("q", "#")
    x.bind("q", "a.b")
    assert list(x.route("a.b", None)) == ["q"]


def test_unbind_prunes_and_stops_matching_but_keeps_other_bindings():
    x = TopicExchange("t")
    x.bind("q1", "a.#.b")
    x.bind("q2", "a.#")
    assert set(x.route("a.z.b", None)) == {"q1", "q2"}
    x.unbind("q1", "a.#.b")
    assert set(x.route("a.z.b", None)) == {"q2"}
    x.unbind("q2", "a.#")
    assert set(x.route("a.z.b", None)) == set()
    assert x._root.children == {}


def test_cache_is_invalidated_by_new_bindings():
    x = TopicExchange("t")
    x.bind("q1", "a.*")
    assert set(x.route("a.b", None)) == {"q1"}
    x.bind("q2", "#.b")
    assert set(x.route("a.b", None)) == {"q1", "q2"}


def test_same_destination_bound_twice_with_same_key_needs_both_unbinds_to_disappear():
    x = TopicExchange("t")
    x.bind("q", "a.*", {"x": 1})
    x.bind("q", "a.*", {"x": 2})
    x.unbind("q", "a.*", {"x": 1})
    assert list(x.route("a.b", None)) == ["q"]
    x.unbind("q", "a.*", {"x": 2})
    assert list(x.route("a.b", None)) == []


def test_many_hashes_do_not_explode():
    x = TopicExchange("t")
    x.bind("q", ".".join(["#"] * 12) + ".z")
    assert list(x.route(".".join(["a"] * 30) + ".z", None)) == ["q"]
    assert list(x.route(".".join(["a"] * 30), None)) == []
