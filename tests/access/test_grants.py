"""Permission patterns, RabbitMQ's refusal texts and the per-channel decision cache."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.access import CONFIGURE, EXCHANGE, QUEUE, READ, WRITE, AccessDenied, ChannelGuard, Grants
from leveret.access.grants import GUARD_CACHE_LIMIT
from leveret.access.patterns import check_pattern, compiled, expand, matches
from leveret.store.api import PermissionDef, TopicPermissionDef


def grants(configure=".*", write=".*", read=".*", topics=None) -> Grants:
    """alice's rights in "/" over tables of her own (`topics`: exchange -> (write, read))."""
    permissions = {("alice", "/"): PermissionDef("alice", "/", configure, write, read)}
    topic_permissions = {("alice", "/", x): TopicPermissionDef("alice", "/", x, w, r)
                         for x, (w, r) in (topics or {}).items()}
    return Grants("alice", "/", permissions, topic_permissions)


def test_patterns_search_unanchored_as_rabbitmq():
    # RabbitMQ's re:run searches: "foo" grants "xfoox" (checked against RabbitMQ in tests/diff).
    assert matches("foo", "xfoox")
    assert not matches("^foo$", "xfoox")
    assert matches("^foo$", "foo")


def test_the_empty_pattern_grants_nothing():
    # RabbitMQ reads "" as "^$": only the empty name, which no resource has (the default exchange is
    # checked as amq.default, an empty queue name becomes a generated one).
    assert matches("", "")
    assert not matches("", "anything")
    assert not grants(write="").allows(EXCHANGE, "", WRITE)


@given(st.text(min_size=1, max_size=20))
def test_every_name_matches_dot_star_and_none_matches_empty(name):
    assert matches(".*", name)
    # "^$" also matches a lone newline: `$` matches before a final newline, in PCRE (RabbitMQ) as in Python.
    assert matches("", name) == (name == "\n")


@given(st.text(alphabet="abc.", min_size=1, max_size=8), st.text(alphabet="abc.", max_size=12))
def test_a_literal_anchored_pattern_matches_exactly_itself(literal, name):
    assert matches("^" + re.escape(literal) + "$", name) == (name == literal)


def test_compiled_patterns_are_shared():
    assert compiled("^q-.*") is compiled("^q-.*")


def test_bad_patterns_are_reported():
    assert check_pattern("(") is not None
    assert check_pattern("^ok$") is None


def test_default_exchange_is_checked_and_named_as_amq_default():
    g = grants(write="^amq\\.default$")
    assert g.allows(EXCHANGE, "", WRITE)
    with pytest.raises(AccessDenied) as refused:
        grants(write="^x$").check(EXCHANGE, "", WRITE)
    assert refused.value.text == "access to exchange 'amq.default' in vhost '/' refused for user 'alice'"


def test_refusal_texts():
    g = grants(configure="^mine-")
    g.check(QUEUE, "mine-1", CONFIGURE)
    with pytest.raises(AccessDenied) as refused:
        g.check(QUEUE, "amq.gen-abc", CONFIGURE)
    assert refused.value.text == "access to queue 'amq.gen-abc' in vhost '/' refused for user 'alice'"
    g.check(QUEUE, "amq.gen-abc", READ)  # read has its own pattern (".*" here)


def test_each_permission_uses_its_own_pattern():
    g = grants(configure="c", write="w", read="r")
    assert g.allows(QUEUE, "c", CONFIGURE) and not g.allows(QUEUE, "c", WRITE)
    assert g.allows(QUEUE, "w", WRITE) and not g.allows(QUEUE, "w", READ)
    assert g.allows(QUEUE, "r", READ) and not g.allows(QUEUE, "r", CONFIGURE)


def test_topic_permissions_expand_username_and_vhost_and_leave_unknown_variables():
    g = grants(topics={"amq.topic": ("^{username}\\.{vhost}$", "^{client_id}$")})
    assert g.allows_topic("amq.topic", "alice./", WRITE)
    assert not g.allows_topic("amq.topic", "bob./", WRITE)
    # AMQP 0-9-1 supplies no client_id: RabbitMQ 3.10 keeps "{client_id}" literal (a literal in a regex too).
    assert g.allows_topic("amq.topic", "{client_id}", READ)
    assert g.allows_topic("other", "anything", WRITE)  # no row for that exchange: everything allowed
    with pytest.raises(AccessDenied) as refused:
        g.check_topic("amq.topic", "bob./", WRITE)
    assert refused.value.text == ("access to topic 'bob./' in exchange 'amq.topic' in vhost '/' "
                                  "refused for user 'alice'")


def test_expand_replaces_every_occurrence():
    assert expand("{a}.{a}.{b}", {"a": "1", "b": "2"}) == "1.1.2"


class CountingGrants(Grants):
    calls = 0

    def check(self, kind, name, permission):
        CountingGrants.calls += 1
        super().check(kind, name, permission)


def test_the_guard_asks_once_per_decision_and_never_caches_a_refusal():
    plain = grants(write="^ok$")
    g = CountingGrants("alice", "/", plain.permissions, plain.topic_permissions)
    guard = ChannelGuard(g)
    for _ in range(5):
        guard.check(EXCHANGE, "ok", WRITE)
    assert CountingGrants.calls == 1
    for _ in range(2):
        with pytest.raises(AccessDenied):
            guard.check(EXCHANGE, "no", WRITE)
    assert CountingGrants.calls == 3


def test_the_guard_skips_topic_checks_for_exchanges_without_rules_and_stays_bounded():
    guard = ChannelGuard(grants(topics={"t": ("^k", ".*")}))
    guard.check_topic("amq.topic", "whatever", WRITE)
    with pytest.raises(AccessDenied):
        guard.check_topic("t", "x", WRITE)
    for i in range(GUARD_CACHE_LIMIT + 10):
        guard.check_topic("t", f"k{i}", WRITE)
    assert len(guard._allowed) <= GUARD_CACHE_LIMIT


def test_changes_apply_to_the_next_decision_and_allowed_ones_are_kept():
    """RabbitMQ's semantics: permissions are read at each check; a channel keeps what it was allowed."""
    g = grants(configure="^a", topics={"t": ("^k1$", ".*")})
    guard = ChannelGuard(g)
    guard.check(QUEUE, "a1", CONFIGURE)
    guard.check_topic("t", "k1", WRITE)
    g.permissions[("alice", "/")] = PermissionDef("alice", "/", "^b", "", "")
    g.topic_permissions[("alice", "/", "t")] = TopicPermissionDef("alice", "/", "t", "^k2$", ".*")
    guard.check(QUEUE, "a1", CONFIGURE)  # decided before the change
    guard.check_topic("t", "k1", WRITE)
    with pytest.raises(AccessDenied):
        guard.check(QUEUE, "a2", CONFIGURE)
    guard.check(QUEUE, "b1", CONFIGURE)
    ChannelGuard(g).check_topic("t", "k2", WRITE)
    with pytest.raises(AccessDenied):
        ChannelGuard(g).check_topic("t", "k1", WRITE)
    del g.permissions[("alice", "/")]  # the row cleared: nothing new is allowed
    with pytest.raises(AccessDenied):
        ChannelGuard(g).check(QUEUE, "b1", CONFIGURE)


def test_a_topic_exchange_without_topic_permission_allows_every_key_and_remembers_none():
    g = grants()
    guard = ChannelGuard(g)
    guard.check_topic("amq.topic", "any.key", WRITE)
    g.topic_permissions[("alice", "/", "amq.topic")] = TopicPermissionDef("alice", "/", "amq.topic", "^ok", "")
    with pytest.raises(AccessDenied):
        guard.check_topic("amq.topic", "any.key", WRITE)  # set later: applies to this channel's next check


def test_the_publish_cache_is_bounded():
    guard = ChannelGuard(grants())
    for i in range(GUARD_CACHE_LIMIT + 5):
        guard.remember_publishable(i)
    assert len(guard.publishable) <= GUARD_CACHE_LIMIT
