"""Message: persistence flag, size, and copies with changed properties."""

from .conftest import make_message


def test_persistent_means_delivery_mode_two():
    assert make_message(delivery_mode=2).persistent
    assert not make_message(delivery_mode=1).persistent
    assert not make_message().persistent


def test_body_size_and_headers():
    m = make_message(b"abc", headers={"a": 1})
    assert m.body_size == 3
    assert m.headers == {"a": 1}


def test_with_properties_copies_and_leaves_original_untouched():
    m = make_message(b"x", "rk", "ex", reply_to="a")
    n = m.with_properties(reply_to="b")
    assert (n.exchange, n.routing_key, n.body, n.properties.reply_to) == ("ex", "rk", b"x", "b")
    assert m.properties.reply_to == "a"
