"""The access registry: users, vhosts, permissions, written through to a definition store."""

from __future__ import annotations

import pytest

from leveret.access import AccessError, AccessRegistry
from leveret.access.passwords import MD5, hash_password
from leveret.store.api import UserDef
from leveret.store.memory import MemoryDefinitionStore


def registry() -> tuple[AccessRegistry, MemoryDefinitionStore]:
    store = MemoryDefinitionStore()
    reg = AccessRegistry(store)
    reg.add_vhost("/")
    reg.add_user("guest", "guest", ("administrator",))
    reg.set_permissions("guest", "/", ".*", ".*", ".*")
    return reg, store


def test_authenticate_checks_password_and_loopback():
    reg, _ = registry()
    assert reg.authenticate("guest", "guest", from_loopback=True).name == "guest"
    assert reg.authenticate("guest", "guest", from_loopback=False) is None  # loopback_users
    assert reg.authenticate("guest", "wrong", from_loopback=True) is None
    assert reg.authenticate("nobody", "guest", from_loopback=True) is None
    reg.add_user("svc", "pw")
    assert reg.authenticate("svc", "pw", from_loopback=False).name == "svc"


def test_a_user_without_password_cannot_log_in_with_one():
    reg, _ = registry()
    reg.add_user("cert-only", None)
    assert reg.authenticate("cert-only", "", from_loopback=True) is None


def test_imported_md5_user_logs_in():
    reg, _ = registry()
    reg.put_user(UserDef("old", hash_password("pw", MD5), MD5, ("management",)))
    assert reg.authenticate("old", "pw", from_loopback=True).tags == ("management",)
    with pytest.raises(AccessError):
        reg.put_user(UserDef("bad", "!!", MD5))


def test_grants_need_an_existing_vhost_and_a_permission_row():
    reg, _ = registry()
    reg.add_user("svc", "pw")
    reg.add_vhost("other")
    assert reg.grants("svc", "/") is None
    assert reg.grants("guest", "nope") is None
    reg.set_permissions("svc", "other", "", "^out$", "^in$")
    g = reg.grants("svc", "other")
    assert (g.user, g.vhost) == ("svc", "other")
    assert g.allows("exchange", "out", "write") and not g.allows("exchange", "in", "write")


def test_topic_permissions_reach_the_grants():
    reg, _ = registry()
    reg.set_topic_permissions("guest", "/", "amq.topic", "^a", "^b")
    g = reg.grants("guest", "/")
    assert g.allows_topic("amq.topic", "a.b", "write") and not g.allows_topic("amq.topic", "b.a", "write")
    reg.clear_topic_permissions("guest", "/")
    assert g.allows_topic("amq.topic", "b.a", "write")  # live: the grants see the change


def test_bad_patterns_and_unknown_names_are_refused_and_change_nothing():
    reg, store = registry()
    with pytest.raises(AccessError):
        reg.set_permissions("guest", "/", "(", ".*", ".*")
    with pytest.raises(AccessError):
        reg.set_permissions("nobody", "/", ".*", ".*", ".*")
    with pytest.raises(AccessError):
        reg.set_permissions("guest", "nowhere", ".*", ".*", ".*")
    assert store.load().permissions[("guest", "/")].configure == ".*"


def test_every_change_is_written_and_cascades_like_the_store():
    reg, store = registry()
    reg.add_vhost("v")
    reg.add_user("u", "p")
    reg.set_permissions("u", "v", ".*", ".*", ".*")
    reg.set_topic_permissions("u", "v", "t", ".*", ".*")
    reg.set_permissions("u", "/", ".*", ".*", ".*")
    reg.delete_vhost("v")
    defs = store.load()
    assert set(defs.permissions) == set(reg.permissions) == {("guest", "/"), ("u", "/")}
    assert defs.topic_permissions == reg.topic_permissions == {}
    reg.delete_user("u")
    assert set(store.load().users) == set(reg.users) == {"guest"}
    assert set(reg.permissions) == {("guest", "/")}


def test_a_store_failure_leaves_memory_as_the_disk_has_it():
    reg, store = registry()

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    store.put_user = full_disk
    with pytest.raises(OSError):
        reg.change_password("guest", "new")
    assert reg.authenticate("guest", "guest", from_loopback=True) is not None


def test_load_takes_stored_definitions():
    _, store = registry()
    fresh = AccessRegistry(store)
    fresh.load(store.load())
    assert fresh.authenticate("guest", "guest", from_loopback=True) is not None
    assert fresh.grants("guest", "/") is not None


def test_users_and_permissions_survive_reopening_the_file_store_and_its_compaction(tmp_path):
    from leveret.store.definitions import FileDefinitionStore

    store = FileDefinitionStore(str(tmp_path))
    reg = AccessRegistry(store)
    reg.add_vhost("v", "team v", ("prod",))
    reg.add_user("u", "p", ("monitoring",))
    reg.set_permissions("u", "v", "^c", "^w", "^r")
    reg.set_topic_permissions("u", "v", "amq.topic", "^{username}", "^r")
    store.close()
    for compact in (False, True):
        store = FileDefinitionStore(str(tmp_path))
        if compact:
            store.compact()
        again = AccessRegistry(store)
        again.load(store.load())
        store.close()
        assert again.vhosts["v"].tags == ("prod",)
        assert again.authenticate("u", "p", from_loopback=False).tags == ("monitoring",)
        g = again.grants("u", "v")
        assert g.allows("queue", "c1", "configure") and not g.allows("queue", "w1", "configure")
        assert g.allows_topic("amq.topic", "u.x", "write") and not g.allows_topic("amq.topic", "x.u", "write")
