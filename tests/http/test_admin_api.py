"""Users, vhosts, permissions and topic permissions through the management API of an embedded broker."""

from __future__ import annotations

import os
import pika
import pytest

from leveret.access.passwords import hash_password
from leveret.embedded import EmbeddedBroker
from leveret.store.filestore import QUEUES_DIR, queue_dir_name

from .api_client import api, call


def amqp_url(broker: EmbeddedBroker, user: str, password: str, vhost: str = "%2F") -> str:
    return f"amqp://{user}:{password}@127.0.0.1:{broker.port}/{vhost}"


def test_user_is_created_updated_listed_and_deleted(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "PUT", "/users/ann", {"password": "pw1", "tags": "management"}).status == 201
    assert call(base, "PUT", "/users/ann", {"password": "pw2", "tags": "monitoring, management"}).status == 204
    ann = call(base, "GET", "/users/ann").body
    assert ann["name"] == "ann" and ann["tags"] == ["monitoring", "management"] and ann["limits"] == {}
    assert ann["hashing_algorithm"] == "rabbit_password_hashing_sha256" and ann["password_hash"]
    assert [u["name"] for u in call(base, "GET", "/users").body] == ["ann", "guest"]
    assert call(base, "GET", "/whoami", auth=("ann", "pw2")).body == {"name": "ann", "tags": ["monitoring", "management"]}
    assert call(base, "GET", "/whoami", auth=("ann", "pw1")).status == 401
    assert call(base, "DELETE", "/users/ann").status == 204
    assert call(base, "DELETE", "/users/ann").status == 404
    assert call(base, "GET", "/users/ann").body == {"error": "Object Not Found", "reason": "Not Found"}


def test_user_put_refusals_are_rabbitmqs(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "PUT", "/users/bob", {"password": "x"})[::2] == (400, {"error": "bad_request", "reason": "tags_not_present"})
    assert call(base, "PUT", "/users/bob", {"password_hash": "abc", "tags": ""}).body == {
        "error": "bad_request", "reason": ["not_base64", "abc"]}
    assert call(base, "PUT", "/users/bob", b"not json").body == {"error": "bad_request", "reason": "not_json"}
    assert "bob" not in broker.server.users.users


def test_imported_hash_logs_in_and_no_password_means_none(broker: EmbeddedBroker) -> None:
    base = api(broker)
    body = {"password_hash": hash_password("imported"), "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": "administrator"}
    assert call(base, "PUT", "/users/imp", body).status == 201
    assert call(base, "GET", "/whoami", auth=("imp", "imported")).status == 200
    assert call(base, "PUT", "/users/imp", {"tags": "administrator"}).status == 204  # no password kept
    assert call(base, "GET", "/users/imp").body["password_hash"] == ""
    assert call(base, "GET", "/whoami", auth=("imp", "imported")).status == 401


def test_only_administrators_change_users_but_management_sees_itself(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/users/mgr", {"password": "pw", "tags": "management"})
    assert call(base, "GET", "/whoami", auth=("mgr", "pw")).body == {"name": "mgr", "tags": ["management"]}
    for method, path in (("GET", "/users"), ("PUT", "/users/x"), ("DELETE", "/users/guest"), ("PUT", "/vhosts/v"),
                         ("GET", "/permissions"), ("PUT", "/permissions/%2F/mgr"), ("GET", "/topic-permissions")):
        answer = call(base, method, path, {"tags": "", "configure": "", "write": "", "read": ""}, auth=("mgr", "pw"))
        assert (answer.status, answer.body) == (401, {"error": "not_authorised", "reason": "Not administrator user"})
        assert "WWW-Authenticate" not in answer.headers
    assert "guest" in broker.server.users.users and "v" not in broker.server.users.vhosts
    wrong = call(base, "GET", "/whoami", auth=("mgr", "wrong"))
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic ")


def test_permissions_are_set_read_and_cleared(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/users/pat", {"password": "pw", "tags": ""})
    row = {"configure": "^pat-", "write": ".*", "read": ""}
    assert call(base, "PUT", "/permissions/%2F/pat", row).status == 201
    assert call(base, "PUT", "/permissions/%2F/pat", row).status == 204
    expected = {"user": "pat", "vhost": "/", **row}
    assert call(base, "GET", "/permissions/%2F/pat").body == expected
    assert expected in call(base, "GET", "/permissions").body
    assert call(base, "GET", "/users/pat/permissions").body == [expected]
    assert expected in call(base, "GET", "/vhosts/%2F/permissions").body
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url(broker, "pat", "pw")))
    connection.close()
    assert call(base, "DELETE", "/permissions/%2F/pat").status == 204
    assert call(base, "DELETE", "/permissions/%2F/pat").status == 404
    assert call(base, "GET", "/permissions/%2F/pat").status == 404
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.URLParameters(amqp_url(broker, "pat", "pw")))


def test_permission_refusals_are_rabbitmqs(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "PUT", "/permissions/%2F/guest", {"configure": ".*"}).body == {
        "error": "bad_request", "reason": "[{key_missing,write},{key_missing,read}]"}
    bad = call(base, "PUT", "/permissions/%2F/guest", {"configure": "(", "write": ".*", "read": ".*"})
    assert bad.status == 400 and bad.body["reason"][:2] == ["invalid_regexp", "("]
    unknown = {"configure": ".*", "write": ".*", "read": ".*"}
    for path in ("/permissions/nowhere/guest", "/permissions/%2F/nobody"):
        assert call(base, "PUT", path, unknown).body == {"error": "bad_request", "reason": "vhost_or_user_not_found"}
    assert broker.server.users.permissions[("guest", "/")].configure == ".*"


def test_topic_permissions_are_set_read_and_cleared(broker: EmbeddedBroker) -> None:
    base = api(broker)
    row = {"exchange": "amq.topic", "write": "^a", "read": ".*"}
    assert call(base, "PUT", "/topic-permissions/%2F/guest", row).status == 201
    assert call(base, "PUT", "/topic-permissions/%2F/guest", row).status == 204
    expected = [{"user": "guest", "vhost": "/", **row}]
    assert call(base, "GET", "/topic-permissions/%2F/guest").body == expected
    assert call(base, "GET", "/topic-permissions").body == expected
    assert call(base, "GET", "/users/guest/topic-permissions").body == expected
    assert call(base, "PUT", "/topic-permissions/%2F/guest", {"write": "", "read": ""}).body == {
        "error": "bad_request", "reason": "[{key_missing,exchange}]"}
    assert call(base, "DELETE", "/topic-permissions/%2F/guest").status == 204
    assert call(base, "DELETE", "/topic-permissions/%2F/guest").status == 404
    assert call(base, "GET", "/topic-permissions/%2F/guest").status == 404


def test_deleting_a_user_through_the_api_closes_its_connections(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/users/gone", {"password": "pw", "tags": ""})
    call(base, "PUT", "/permissions/%2F/gone", {"configure": ".*", "write": ".*", "read": ".*"})
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url(broker, "gone", "pw")))
    assert call(base, "DELETE", "/users/gone").status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=5)
    assert closed.value.reply_code == 320 and closed.value.reply_text == "CONNECTION_FORCED - user 'gone' is deleted"


def test_a_vhost_created_through_the_api_is_listed_and_usable(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "PUT", "/vhosts/team", {"description": "the team's", "tags": "a,b"}).status == 201
    assert call(base, "PUT", "/vhosts/team", {"description": "ours"}).status == 204
    team = call(base, "GET", "/vhosts/team").body
    assert (team["name"], team["description"], team["tags"]) == ("team", "ours", ["a", "b"])
    assert team["metadata"] == {"description": "ours", "tags": ["a", "b"]}
    assert [v["name"] for v in call(base, "GET", "/vhosts").body] == ["/", "team"]
    assert call(base, "GET", "/queues/team").body == []
    call(base, "PUT", "/permissions/team/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url(broker, "guest", "guest", "team")))
    connection.channel().queue_declare("here")
    connection.close()
    assert [q["name"] for q in call(base, "GET", "/queues/team").body] == ["here"]


def test_a_management_user_sees_only_the_vhosts_it_may_enter(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/vhosts/theirs")
    call(base, "PUT", "/users/mgr", {"password": "pw", "tags": "management"})
    call(base, "PUT", "/permissions/theirs/mgr", {"configure": "", "write": "", "read": ""})
    assert [v["name"] for v in call(base, "GET", "/vhosts", auth=("mgr", "pw")).body] == ["theirs"]
    assert call(base, "GET", "/vhosts/theirs", auth=("mgr", "pw")).body["reason"] == "Not administrator user"
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as connection:
        connection.channel().queue_declare("in-root")
    assert call(base, "GET", "/queues", auth=("mgr", "pw")).body == []
    assert [q["name"] for q in call(base, "GET", "/queues").body] == ["in-root"]
    for path in ("/queues/%2F", "/exchanges/%2F"):
        refused = call(base, "GET", path, auth=("mgr", "pw"))
        assert (refused.status, refused.body) == (
            401, {"error": "not_authorised", "reason": "User not authorised to access virtual host"})
    assert call(base, "GET", "/queues/theirs", auth=("mgr", "pw")).body == []
    assert call(base, "GET", "/queues/nowhere", auth=("mgr", "pw")).status == 404


def test_deleting_a_vhost_closes_its_connections_and_deletes_its_queues_from_disk(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        base = api(broker)
        call(base, "PUT", "/vhosts/doomed")
        call(base, "PUT", "/permissions/doomed/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url(broker, "guest", "guest", "doomed")))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("kept", durable=True)
        channel.exchange_declare("ex", "fanout", durable=True)
        channel.basic_publish("", "kept", b"x" * 100_000, pika.BasicProperties(delivery_mode=2))
        queue_dir = os.path.join(data_dir, "messages", QUEUES_DIR, queue_dir_name("doomed", "kept"))
        assert os.path.isdir(queue_dir)
        assert call(base, "DELETE", "/vhosts/doomed").status == 204
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=5)
        assert (closed.value.reply_code, closed.value.reply_text) == (320, "CONNECTION_FORCED - vhost 'doomed' is down")
        assert call(base, "GET", "/vhosts/doomed").status == 404
        assert call(base, "DELETE", "/vhosts/doomed").status == 404
        assert "doomed" not in broker.server.broker.vhosts
        assert not any(key[1] == "doomed" for key in broker.server.users.permissions)
        assert not os.path.exists(queue_dir)
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert "doomed" not in broker.server.broker.vhosts and "doomed" not in broker.server.users.vhosts
        call(api(broker), "PUT", "/vhosts/doomed")
        assert broker.server.broker.vhosts["doomed"].queues == {}
        assert "ex" not in broker.server.broker.vhosts["doomed"].exchanges
