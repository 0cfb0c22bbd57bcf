"""`leveret users|vhosts|permissions|topic-permissions ...`: administration in the spirit of rabbitmqctl,
through a running broker's management API (leveret/http/).

Each command makes a few requests with `ManagementClient` and prints one line (or a table); a failure is
one line on stderr and exit status 1 (unknown user or vhost, bad regex, refused credentials, broker not
running).
"""

from __future__ import annotations

from typing import Any, Callable

import click

from leveret.cli_client import ManagementClient, NotFound, segment
from leveret.cli_table import aligned

DEFAULT_URL = "http://127.0.0.1:15672"


def api_options(command: Callable) -> Callable:
    """--url, --user and --password (as `leveret list` has them), passed on as one `client` argument."""

    # Named api_* so they never collide with a command's own USER or PASSWORD argument.
    def with_client(url: str, api_user: str, api_password: str, **kwargs: Any) -> Any:
        return command(ManagementClient(url, api_user, api_password), **kwargs)

    with_client.__name__ = command.__name__
    with_client.__doc__ = command.__doc__
    for option in reversed((
        click.option("--url", default=DEFAULT_URL, show_default=True, help="The broker's management API."),
        click.option("--user", "api_user", default="guest", show_default=True, help="An administrator's name."),
        click.option("--password", "api_password", default="guest", show_default=True,
                     help="That administrator's password."),
    )):
        with_client = option(with_client)
    return with_client


def vhost_option(command: Callable) -> Callable:
    return click.option("--vhost", "-p", default="/", show_default=True, help="The virtual host.")(command)


def _tags(values: tuple[str, ...]) -> list[str]:
    """Tags given as separate arguments or comma-separated, as rabbitmqctl takes them."""
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def _user(client: ManagementClient, name: str) -> dict[str, Any]:
    try:
        return client.get(f"/api/users/{segment(name)}")
    except NotFound:
        raise click.ClickException(f"user '{name}' does not exist") from None


def _create(client: ManagementClient, kind: str, name: str, body: dict[str, Any]) -> None:
    """PUT a new user or vhost; an existing one is an error (as rabbitmqctl add_user and add_vhost)."""
    path = f"/api/{kind}s/{segment(name)}"
    try:
        client.get(path)
    except NotFound:
        client.request("PUT", path, body)
    else:
        raise click.ClickException(f"{kind} '{name}' already exists")
    click.echo(f"Added {kind} '{name}'.")


def delete_or_fail(client: ManagementClient, path: str, missing: str, done: str) -> None:
    """DELETE `path`; a 404 is the one-line error `missing`, else `done` is printed."""
    try:
        client.request("DELETE", path)
    except NotFound:
        raise click.ClickException(missing) from None
    click.echo(done)


def print_table(headings: list[str], rows: list[list[str]]) -> None:
    click.echo(aligned(headings, rows))


# -- users ------------------------------------------------------------------------------------------

@click.group()
def users() -> None:
    """List, add and delete users, change their passwords and tags."""


@users.command("list")
@api_options
def users_list(client: ManagementClient) -> None:
    """Every user and its tags."""
    rows = client.get("/api/users")
    print_table(["user", "tags"], [[row["name"], ",".join(row["tags"])] for row in rows])


@users.command("add")
@click.argument("name")
@click.argument("password")
@click.option("--tags", multiple=True, help="Tags, comma-separated or repeated (administrator, management...).")
@api_options
def users_add(client: ManagementClient, name: str, password: str, tags: tuple[str, ...]) -> None:
    """Create a user (an existing one is an error, as rabbitmqctl add_user)."""
    _create(client, "user", name, {"password": password, "tags": _tags(tags)})


@users.command("delete")
@click.argument("name")
@api_options
def users_delete(client: ManagementClient, name: str) -> None:
    """Delete a user; its connections are closed."""
    delete_or_fail(client, f"/api/users/{segment(name)}", f"user '{name}' does not exist", f"Deleted user '{name}'.")


@users.command("passwd")
@click.argument("name")
@click.argument("password")
@api_options
def users_passwd(client: ManagementClient, name: str, password: str) -> None:
    """Change a user's password (its tags stay)."""
    user = _user(client, name)
    client.request("PUT", f"/api/users/{segment(name)}", {"password": password, "tags": user["tags"]})
    click.echo(f"Changed the password of user '{name}'.")


@users.command("tags")
@click.argument("name")
@click.argument("tags", nargs=-1)
@api_options
def users_tags(client: ManagementClient, name: str, tags: tuple[str, ...]) -> None:
    """Replace a user's tags (none given: no tags); its password stays."""
    user = _user(client, name)
    client.request("PUT", f"/api/users/{segment(name)}", {
        "password_hash": user["password_hash"], "hashing_algorithm": user["hashing_algorithm"], "tags": _tags(tags)})
    click.echo(f"Set the tags of user '{name}' to [{','.join(_tags(tags))}].")


def _print_limits(client: ManagementClient, kind: str, name: str | None) -> None:
    """The table of /api/user-limits or /api/vhost-limits (`kind`: user or vhost), all or NAME's."""
    try:
        rows = client.get(f"/api/{kind}-limits" + (f"/{segment(name)}" if name is not None else ""))
    except NotFound:
        raise click.ClickException(f"{kind} '{name}' does not exist") from None
    print_table([kind, "limit", "value"],
                 [[row[kind], limit, str(value)] for row in rows for limit, value in sorted(row["value"].items())])


@users.command("limits")
@click.argument("name", required=False)
@api_options
def users_limits(client: ManagementClient, name: str | None) -> None:
    """Every user's limits (max-connections, max-channels), or NAME's."""
    _print_limits(client, "user", name)


@users.command("set-limit", context_settings={"ignore_unknown_options": True})  # VALUE may be -1
@click.argument("name")
@click.argument("limit", type=click.Choice(["max-connections", "max-channels"]))
@click.argument("value", type=int)
@api_options
def users_set_limit(client: ManagementClient, name: str, limit: str, value: int) -> None:
    """Set one of NAME's limits (a negative VALUE: no limit); it applies to the next connection or channel."""
    _user(client, name)
    client.request("PUT", f"/api/user-limits/{segment(name)}/{limit}", {"value": value})
    click.echo(f"Set {limit} of user '{name}' to {value}.")


@users.command("clear-limit")
@click.argument("name")
@click.argument("limit", type=click.Choice(["max-connections", "max-channels"]))
@api_options
def users_clear_limit(client: ManagementClient, name: str, limit: str) -> None:
    """Remove one of NAME's limits."""
    delete_or_fail(client, f"/api/user-limits/{segment(name)}/{limit}", f"user '{name}' does not exist",
            f"Cleared {limit} of user '{name}'.")


# -- vhosts -----------------------------------------------------------------------------------------

@click.group()
def vhosts() -> None:
    """List, add and delete virtual hosts."""


@vhosts.command("list")
@api_options
def vhosts_list(client: ManagementClient) -> None:
    """Every vhost, its description and message count."""
    rows = client.get("/api/vhosts")
    print_table(["name", "description", "messages"],
                 [[row["name"], row.get("description", ""), str(row.get("messages", 0))] for row in rows])


@vhosts.command("add")
@click.argument("name")
@click.option("--description", default="", help="A description.")
@click.option("--tags", multiple=True, help="Tags, comma-separated or repeated.")
@api_options
def vhosts_add(client: ManagementClient, name: str, description: str, tags: tuple[str, ...]) -> None:
    """Create a vhost (the user running this gets full permissions in it, as in RabbitMQ)."""
    _create(client, "vhost", name, {"description": description, "tags": _tags(tags)})


@vhosts.command("delete")
@click.argument("name")
@api_options
def vhosts_delete(client: ManagementClient, name: str) -> None:
    """Delete a vhost with its queues, exchanges and messages; its connections are closed."""
    delete_or_fail(client, f"/api/vhosts/{segment(name)}", f"vhost '{name}' does not exist", f"Deleted vhost '{name}'.")


@vhosts.command("limits")
@click.argument("name", required=False)
@api_options
def vhosts_limits(client: ManagementClient, name: str | None) -> None:
    """Every vhost's limits (max-connections, max-queues), or NAME's."""
    _print_limits(client, "vhost", name)


@vhosts.command("set-limit", context_settings={"ignore_unknown_options": True})  # VALUE may be -1
@click.argument("name")
@click.argument("limit", type=click.Choice(["max-connections", "max-queues"]))
@click.argument("value", type=int)
@api_options
def vhosts_set_limit(client: ManagementClient, name: str, limit: str, value: int) -> None:
    """Set one of NAME's limits (a negative VALUE: no limit); it applies to the next open or declare."""
    try:
        client.request("PUT", f"/api/vhost-limits/{segment(name)}/{limit}", {"value": value})
    except NotFound:
        raise click.ClickException(f"vhost '{name}' does not exist") from None
    click.echo(f"Set {limit} of vhost '{name}' to {value}.")


@vhosts.command("clear-limit")
@click.argument("name")
@click.argument("limit", type=click.Choice(["max-connections", "max-queues"]))
@api_options
def vhosts_clear_limit(client: ManagementClient, name: str, limit: str) -> None:
    """Remove one of NAME's limits."""
    delete_or_fail(client, f"/api/vhost-limits/{segment(name)}/{limit}", f"vhost '{name}' does not exist",
            f"Cleared {limit} of vhost '{name}'.")


# -- permissions and topic permissions ----------------------------------------------------------------

def _check_user_and_vhost(client: ManagementClient, user: str, vhost: str) -> None:
    """Name which of the two is unknown (the API's 400 says only `vhost_or_user_not_found`)."""
    _user(client, user)
    try:
        client.get(f"/api/vhosts/{segment(vhost)}")
    except NotFound:
        raise click.ClickException(f"vhost '{vhost}' does not exist") from None


def _listing(client: ManagementClient, kind: str, vhost: str | None) -> list[dict[str, Any]]:
    rows = client.get(f"/api/{kind}")
    return [row for row in rows if vhost is None or row["vhost"] == vhost]


@click.group()
def permissions() -> None:
    """List, set and clear users' configure/write/read permissions in a vhost."""


@permissions.command("list")
@click.option("--vhost", "-p", default=None, help="Only this vhost (default: all).")
@api_options
def permissions_list(client: ManagementClient, vhost: str | None) -> None:
    """Every permission row: user, vhost, configure, write, read."""
    rows = _listing(client, "permissions", vhost)
    print_table(["user", "vhost", "configure", "write", "read"],
                 [[r["user"], r["vhost"], r["configure"], r["write"], r["read"]] for r in rows])


@permissions.command("set")
@click.argument("user")
@click.argument("configure")
@click.argument("write")
@click.argument("read")
@vhost_option
@api_options
def permissions_set(client: ManagementClient, user: str, configure: str, write: str, read: str, vhost: str) -> None:
    """Set USER's three patterns in the vhost (regular expressions; "" grants nothing)."""
    _check_user_and_vhost(client, user, vhost)
    client.request("PUT", f"/api/permissions/{segment(vhost)}/{segment(user)}",
                   {"configure": configure, "write": write, "read": read})
    click.echo(f"Set the permissions of user '{user}' in vhost '{vhost}'.")


@permissions.command("clear")
@click.argument("user")
@vhost_option
@api_options
def permissions_clear(client: ManagementClient, user: str, vhost: str) -> None:
    """Remove USER's permission row in the vhost (it can no longer open it)."""
    delete_or_fail(client, f"/api/permissions/{segment(vhost)}/{segment(user)}",
            f"user '{user}' has no permissions in vhost '{vhost}'",
            f"Cleared the permissions of user '{user}' in vhost '{vhost}'.")


@click.group("topic-permissions")
def topic_permissions() -> None:
    """List, set and clear users' topic permissions (routing-key patterns per topic exchange)."""


@topic_permissions.command("list")
@click.option("--vhost", "-p", default=None, help="Only this vhost (default: all).")
@api_options
def topic_permissions_list(client: ManagementClient, vhost: str | None) -> None:
    """Every topic permission row: user, vhost, exchange, write, read."""
    rows = _listing(client, "topic-permissions", vhost)
    print_table(["user", "vhost", "exchange", "write", "read"],
                 [[r["user"], r["vhost"], r["exchange"], r["write"], r["read"]] for r in rows])


@topic_permissions.command("set")
@click.argument("user")
@click.argument("exchange")
@click.argument("write")
@click.argument("read")
@vhost_option
@api_options
def topic_permissions_set(client: ManagementClient, user: str, exchange: str, write: str, read: str,
                          vhost: str) -> None:
    """Set USER's write and read routing-key patterns on EXCHANGE in the vhost."""
    _check_user_and_vhost(client, user, vhost)
    client.request("PUT", f"/api/topic-permissions/{segment(vhost)}/{segment(user)}",
                   {"exchange": exchange, "write": write, "read": read})
    click.echo(f"Set the topic permissions of user '{user}' on exchange '{exchange}' in vhost '{vhost}'.")


@topic_permissions.command("clear")
@click.argument("user")
@vhost_option
@api_options
def topic_permissions_clear(client: ManagementClient, user: str, vhost: str) -> None:
    """Remove every topic permission of USER in the vhost."""
    delete_or_fail(client, f"/api/topic-permissions/{segment(vhost)}/{segment(user)}",
            f"user '{user}' has no topic permissions in vhost '{vhost}'",
            f"Cleared the topic permissions of user '{user}' in vhost '{vhost}'.")


COMMANDS = (users, vhosts, permissions, topic_permissions)
