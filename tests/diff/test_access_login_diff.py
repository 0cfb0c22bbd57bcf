"""Differential tests of login and vhost access with stored users (issue 11)."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from pika.spec import Connection

from access_users import access_differential  # noqa: F401 (a fixture)
from differential import close_of
from wireclient import WireClient


def _open(url: str, **kwargs) -> tuple | str:
    with WireClient(url) as client:
        frame = client.open(**kwargs)
        return close_of(frame.method) or type(frame.method).NAME


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
def test_a_wrong_password_is_refused_with_rabbitmqs_403(access_differential, mechanism):
    def scenario(url, _admin, _names):
        return _open(url, password="wrong", mechanism=mechanism), _open(url, mechanism=mechanism)

    refused, accepted = access_differential((".*", ".*", ".*"), scenario)
    assert refused == ("Connection.Close", 403, f"ACCESS_REFUSED - Login was refused using authentication "
                                                f"mechanism {mechanism}. For details see the broker logfile.", 0, 0)
    assert accepted == "Connection.OpenOk"


def test_an_unknown_user_is_refused_like_a_wrong_password(access_differential):
    def scenario(url, _admin, _names):
        return _open(url.replace("diff-user-", "nobody-"))

    assert access_differential((".*", ".*", ".*"), scenario)[1] == 403


def test_an_unknown_vhost_is_530(access_differential):
    def scenario(url, _admin, _names):
        return _open(url, vhost="no-such-vhost")

    assert access_differential((".*", ".*", ".*"), scenario) == (
        "Connection.Close", 530, "NOT_ALLOWED - vhost no-such-vhost not found", 10, 40)


def test_a_vhost_without_a_permission_row_is_530_with_rabbitmqs_text(access_differential):
    def scenario(url, _admin, _names):
        return _open(url)

    code, text = access_differential(None, scenario)[1:3]
    assert code == 530 and text.startswith("NOT_ALLOWED - access to vhost '/' refused for user 'diff-user-")


def test_empty_permissions_still_let_the_user_in(access_differential):
    # A row with three empty patterns grants nothing, but it is a row: connection.open succeeds.
    def scenario(url, _admin, _names):
        return _open(url)

    assert access_differential(("", "", ""), scenario) == "Connection.OpenOk"


def test_deleting_a_user_closes_its_connections_with_320(access_differential):
    def scenario(url, _admin, _names, users):
        with WireClient(url) as client:
            client.open()
            client.channel(1)
            users.delete(urllib.parse.unquote(urllib.parse.urlsplit(url).username))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                frame = client.next_frame()
                if isinstance(getattr(frame, "method", None), Connection.Close):
                    return close_of(frame.method)
        return None

    code, text = access_differential((".*", ".*", ".*"), scenario, pass_users=True)[1:3]
    assert code == 320 and text.startswith("CONNECTION_FORCED - user 'diff-user-") and text.endswith("' is deleted")
