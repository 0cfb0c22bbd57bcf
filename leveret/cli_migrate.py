"""`leveret migrate --to URL | --from URL [--dry-run]`: move a broker's definitions and queued messages
between leveret and RabbitMQ (either way), through both brokers' management APIs.

URL is the other broker's management API with credentials (http://user:pass@host:15672); the local
broker is the one behind --url/--user/--password, as for the other commands. The source's vhosts,
exchanges, queues and bindings are declared on the target, then one shovel per non-empty queue is
defined ON THE TARGET with `src-delete-after: queue-length` (the target pulls each backlog over AMQP;
both brokers run RabbitMQ's dynamic shovels), a progress bar per queue follows them, and a report
compares the counts on both sides. What the target cannot hold (stream contents, messages held by an
x-delayed-message exchange, leveret-only arguments on RabbitMQ) is named in a warning, never dropped
silently. `--dry-run` prints the plan and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import click

from leveret.cli_admin import DEFAULT_URL
from leveret.cli_client import ManagementClient, NotFound, segment
from leveret.cli_table import print_table

SHOVEL_PREFIX = "leveret-migrate-"
# Queue arguments RabbitMQ 3.10 ignores (docs/compatibility.md, Extensions).
LEVERET_ONLY_ARGUMENTS = ("x-requeue-delay",)
POLL_INTERVAL = 0.5  # seconds between progress reads: the shovels move the messages, this only watches


@dataclass
class Broker:
    """One side of the move: its management API, where its AMQP listener is, and what it is."""

    client: ManagementClient
    amqp_host: str
    amqp_port: int
    user: str
    password: str
    product: str

    def amqp_uri(self, vhost: str) -> str:
        return (f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.amqp_host}:"
                f"{self.amqp_port}/{quote(vhost, safe='')}")


@dataclass
class Plan:
    vhosts: list[str]
    exchanges: list[dict[str, Any]]
    queues: list[dict[str, Any]]
    bindings: list[dict[str, Any]]
    backlog: dict[tuple[str, str], int]  # (vhost, queue) -> messages to move
    warnings: list[str] = field(default_factory=list)


def _broker(url: str, user: str | None = None, password: str | None = None) -> Broker:
    parts = urlsplit(url)
    user = user if user is not None else (parts.username or "guest")
    password = password if password is not None else (parts.password or "guest")
    base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    client = ManagementClient(base, user, password)
    overview = client.get("/api/overview")
    ports = [listener["port"] for listener in overview.get("listeners", []) if listener.get("protocol") == "amqp"]
    if not ports:
        raise click.ClickException(f"{base} reports no AMQP listener to move messages through")
    return Broker(client, parts.hostname or "127.0.0.1", ports[0], user, password,
                  overview.get("product_name", "leveret"))


def ready_counts(broker: Broker, queues: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Each queue's ready messages now, by a passive declare over AMQP: RabbitMQ's API lists counts up to
    5 s old, and a backlog published just before the move must not be missed."""
    import aiormq  # the shovels' client; imported here so the other commands do not load it

    async def count() -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for vhost in sorted({vhost for vhost, _ in queues}):
            connection = await aiormq.connect(broker.amqp_uri(vhost))
            try:
                channel = await connection.channel()
                for v, name in queues:
                    if v == vhost:
                        found[(v, name)] = (await channel.queue_declare(name, passive=True)).message_count or 0
            finally:
                await connection.close()
        return found

    try:
        return asyncio.run(count())
    except Exception as exc:  # one line, as every CLI failure
        raise click.ClickException(f"cannot count the messages over AMQP at {broker.amqp_host}:"
                                   f"{broker.amqp_port}: {exc}") from None


def make_plan(source: Broker, target: Broker, only: tuple[str, ...]) -> Plan:
    """What to declare on the target and which backlogs to move, from the source's listings."""
    vhosts = [v["name"] for v in source.client.get("/api/vhosts") if not only or v["name"] in only]
    missing = set(only) - set(vhosts)
    if missing:
        raise click.ClickException(f"no vhost {sorted(missing)[0]!r} on the source")
    wanted = set(vhosts)
    exchanges = [x for x in source.client.get("/api/exchanges") if x["vhost"] in wanted
                 and x["name"] and not x["name"].startswith("amq.")]
    queues = [q for q in source.client.get("/api/queues") if q["vhost"] in wanted and not q.get("exclusive")]
    bindings = [b for b in source.client.get("/api/bindings") if b["vhost"] in wanted and b["source"]]
    plan = Plan(vhosts, exchanges, queues, bindings, {})
    to_rabbitmq = target.product == "RabbitMQ"
    for x in exchanges:
        held = x.get("delayed_messages") or 0
        if x["type"] == "x-delayed-message" and held:
            plan.warnings.append(f"exchange {x['name']!r} in vhost {x['vhost']!r} holds {held} delayed messages: "
                                 "they are not moved (deliver them first, or move them by hand)")
    counts = ready_counts(source, [(q["vhost"], q["name"]) for q in queues
                                   if (q.get("arguments") or {}).get("x-queue-type") != "stream"])
    for q in queues:
        arguments = q.get("arguments") or {}
        count = counts.get((q["vhost"], q["name"]), 0)
        if arguments.get("x-queue-type") == "stream":
            # Declared on the target, but its log is not moved (leveret lists a stream's messages as 0, as its
            # declare-ok does, so the warning does not depend on a count).
            plan.warnings.append(f"stream {q['name']!r} in vhost {q['vhost']!r}: declared on the target, its "
                                 "messages are not moved (a shovel consumes; replay the stream with a client)")
            continue
        if to_rabbitmq:
            for name in LEVERET_ONLY_ARGUMENTS:
                if name in arguments:
                    plan.warnings.append(f"queue {q['name']!r} in vhost {q['vhost']!r}: argument {name} has no "
                                         "RabbitMQ equivalent and is ignored there")
        if count:
            plan.backlog[(q["vhost"], q["name"])] = count
    return plan


def print_plan(plan: Plan, source: Broker, target: Broker) -> None:
    click.echo(f"From {source.product} at {source.client.url} to {target.product} at {target.client.url}:")
    click.echo(f"  {len(plan.vhosts)} vhosts, {len(plan.exchanges)} exchanges, {len(plan.queues)} queues, "
               f"{len(plan.bindings)} bindings")
    click.echo(f"  {sum(plan.backlog.values())} messages in {len(plan.backlog)} queues, one shovel each")
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)


def declare(plan: Plan, target: Broker) -> None:
    """The definitions on the target, in dependency order (an existing equal object is left as it is)."""
    c = target.client
    for vhost in plan.vhosts:
        c.request("PUT", f"/api/vhosts/{segment(vhost)}", {})
        c.request("PUT", f"/api/permissions/{segment(vhost)}/{segment(target.user)}",
                  {"configure": ".*", "write": ".*", "read": ".*"})
    for x in plan.exchanges:
        c.request("PUT", f"/api/exchanges/{segment(x['vhost'])}/{segment(x['name'])}", {
            "type": x["type"], "durable": x["durable"], "auto_delete": x["auto_delete"],
            "internal": x.get("internal", False), "arguments": x.get("arguments") or {}})
    for q in plan.queues:
        c.request("PUT", f"/api/queues/{segment(q['vhost'])}/{segment(q['name'])}", {
            "durable": q["durable"], "auto_delete": q["auto_delete"], "arguments": q.get("arguments") or {}})
    for b in plan.bindings:
        kind = "q" if b["destination_type"] == "queue" else "e"
        c.request("POST", f"/api/bindings/{segment(b['vhost'])}/e/{segment(b['source'])}/{kind}/"
                          f"{segment(b['destination'])}", {"routing_key": b["routing_key"],
                                                           "arguments": b.get("arguments") or {}})


def shovel_name(queue: str) -> str:
    return SHOVEL_PREFIX + queue


def start_shovels(plan: Plan, source: Broker, target: Broker) -> None:
    for (vhost, queue) in plan.backlog:
        target.client.request("PUT", f"/api/parameters/shovel/{segment(vhost)}/{segment(shovel_name(queue))}", {
            "value": {"src-uri": source.amqp_uri(vhost), "src-queue": queue, "dest-uri": f"amqp:///{quote(vhost, safe='')}",
                      "dest-queue": queue, "src-delete-after": "queue-length", "ack-mode": "on-confirm"}})


def _shovel_running(target: Broker, vhost: str, queue: str) -> bool:
    try:
        target.client.get(f"/api/parameters/shovel/{segment(vhost)}/{segment(shovel_name(queue))}")
    except NotFound:
        return False
    return True


def _messages(broker: Broker, vhost: str, queue: str) -> int:
    try:
        return broker.client.get(f"/api/queues/{segment(vhost)}/{segment(queue)}").get("messages") or 0
    except NotFound:
        return 0


def follow(plan: Plan, source: Broker, target: Broker, timeout: float) -> None:
    """A progress bar per queue until every shovel deleted itself (or `timeout` seconds passed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    pending = dict(plan.backlog)
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as progress:
        bars = {key: progress.add_task(f"{key[0]}/{key[1]}", total=count) for key, count in pending.items()}
        while pending and time.monotonic() < deadline:
            for key in list(pending):
                left = _messages(source, *key)
                progress.update(bars[key], completed=max(0, plan.backlog[key] - left))
                if not _shovel_running(target, *key):
                    progress.update(bars[key], completed=plan.backlog[key] - min(left, plan.backlog[key]))
                    del pending[key]
            if pending:
                time.sleep(POLL_INTERVAL)  # polling another process's API, bounded by the deadline
    if pending:
        raise click.ClickException(f"{len(pending)} shovels still running after {timeout:.0f} s "
                                   "(they go on; run the command with --dry-run to see what is left)")


def report(plan: Plan, source: Broker, target: Broker) -> bool:
    """The counts on both sides, per queue, read over AMQP; True when every backlog arrived whole (a message
    consumed on the target meanwhile would show as missing: run it before clients move)."""
    keys = [(q["vhost"], q["name"]) for q in plan.queues if (q.get("arguments") or {}).get("x-queue-type") != "stream"]
    now_source, now_target = ready_counts(source, keys), ready_counts(target, keys)
    rows, ok = [], True
    for key in keys:
        before, left, after = plan.backlog.get(key, 0), now_source[key], now_target[key]
        good = after + left >= before
        ok = ok and good
        rows.append([key[0], key[1], str(before), str(left), str(after), "ok" if good else "MISSING"])
    print_table(["vhost", "queue", "source before", "source now", "target now", ""], rows)
    return ok


@click.command("migrate")
@click.option("--to", "to_url", help="Move the local broker to this one (its management API, http://user:pass@host:port).")
@click.option("--from", "from_url", help="Move this broker (its management API) to the local one.")
@click.option("--vhost", "-p", "vhosts", multiple=True, help="Only these vhosts (repeat; default: all).")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait for the backlogs to move.")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The local broker's management API.")
@click.option("--user", default="guest", show_default=True, help="An administrator of the local broker.")
@click.option("--password", default="guest", show_default=True, help="That administrator's password.")
def migrate(to_url: str | None, from_url: str | None, vhosts: tuple[str, ...], dry_run: bool, timeout: float,
            url: str, user: str, password: str) -> None:
    """Move definitions and queued messages to (--to) or from (--from) another broker."""
    if (to_url is None) == (from_url is None):
        raise click.UsageError("give exactly one of --to URL and --from URL")
    local = _broker(url, user, password)
    remote = _broker(to_url or from_url)  # type: ignore[arg-type]
    source, target = (local, remote) if to_url else (remote, local)
    plan = make_plan(source, target, vhosts)
    print_plan(plan, source, target)
    if dry_run:
        return
    declare(plan, target)
    start_shovels(plan, source, target)
    follow(plan, source, target, timeout)
    if not report(plan, source, target):
        raise click.ClickException("some messages did not arrive (see the table)")
    click.echo(f"Moved {sum(plan.backlog.values())} messages in {len(plan.backlog)} queues.")


COMMANDS = (migrate,)
