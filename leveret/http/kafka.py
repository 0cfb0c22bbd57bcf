"""The Kafka side in the management API and /metrics (docs/kafka.md): GET /api/topics[/{vhost}] (topics
with their partitions' first offsets and high watermarks) and GET /api/groups[/{vhost}] (consumer groups
with their members and lag), leveret's own endpoints (RabbitMQ has no Kafka listener), which
`leveret list topics|groups` reads. /metrics gains the lag per group and partition: kafka_exporter's
families and labels, the ones Kafka dashboards query, under leveret's prefix (`leveret_kafka_consumergroup_lag`
for its `kafka_consumergroup_lag`), as every family RabbitMQ does not write. A user sees the vhosts it has permissions in (administrators and
monitoring users: all), as for the other listings.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.http.exposition import Family
from leveret.http.responses import USER, not_found, tags_of
from leveret.http.target import ManagementTarget, target_of


def _visible(request: web.Request, vhost: str) -> bool:
    if {"administrator", "monitoring"}.intersection(tags_of(request)):
        return True
    return (request[USER].name, vhost) in target_of(request).users.permissions


def _listing(which: str):
    async def handler(request: web.Request) -> web.Response:
        target = target_of(request)
        vhost = request.match_info.get("vhost")
        if vhost is not None and (vhost not in target.users.vhosts or not _visible(request, vhost)):
            return not_found()
        rows: list[dict[str, Any]] = []
        if target.kafka is not None:
            rows = target.kafka.topics_status() if which == "topics" else target.kafka.groups_status()
        return web.json_response([row for row in rows if (vhost is None or row["vhost"] == vhost)
                                  and _visible(request, row["vhost"])])
    return handler


def kafka_families(target: ManagementTarget) -> list[Family]:
    """kafka_exporter's families (leveret_-prefixed): partitions per topic, each partition's newest and oldest offsets, and each
    group's committed offset and lag per partition."""
    if target.kafka is None:
        return []
    partitions = Family("leveret_kafka_topic_partitions", "Number of partitions of the topic.")
    current = Family("leveret_kafka_topic_partition_current_offset", "Offset the next record appended will get.")
    oldest = Family("leveret_kafka_topic_partition_oldest_offset", "Oldest offset retention keeps.")
    for topic in target.kafka.topics_status():
        partitions.sample(topic["partition_count"], topic=topic["name"])
        for p in topic["partitions"]:
            current.sample(p["high_watermark"], topic=topic["name"], partition=str(p["partition"]))
            oldest.sample(p["first_offset"], topic=topic["name"], partition=str(p["partition"]))
    offset = Family("leveret_kafka_consumergroup_current_offset", "Offset the group committed in the partition.")
    lag = Family("leveret_kafka_consumergroup_lag", "Records the group has yet to commit in the partition.")
    members = Family("leveret_kafka_consumergroup_members", "Members of the group.")
    for group in target.kafka.groups_status():
        members.sample(group["member_count"], consumergroup=group["name"])
        for p in group["partitions"]:
            labels = {"consumergroup": group["name"], "topic": p["topic"], "partition": str(p["partition"])}
            offset.sample(p["committed_offset"], **labels)
            lag.sample(p["lag"], **labels)
    return [partitions, current, oldest, offset, lag, members]


def add_kafka_routes(app: web.Application) -> None:
    for which in ("topics", "groups"):
        app.router.add_get(f"/api/{which}", _listing(which))
        app.router.add_get(f"/api/{which}/{{vhost}}", _listing(which))
