"""What the management API, /metrics and `leveret list topics|groups` show of the Kafka side: topics with
their partitions' offsets, and consumer groups with their members and lag (high watermark minus committed
offset, per partition, as Kafka's tools compute it). Plain dicts, read from the model on each call."""

from __future__ import annotations

from typing import Any

from leveret.kafka.groups import TRACKING_PREFIX, GroupCoordinator
from leveret.kafka.topics import Topics


def topic_rows(topics: Topics) -> list[dict[str, Any]]:
    """One row per topic: its partitions (stream queue, first offset, high watermark) and totals."""
    rows = []
    for name in topics.names():
        partitions = []
        for index, queue in enumerate(topics.partitions(name) or []):
            store = queue.stream_store
            partitions.append({"partition": index, "queue": queue.name, "first_offset": store.first_offset,
                               "high_watermark": store.next_offset, "bytes": store.size_bytes})
        rows.append({"vhost": topics.vhost.name, "name": name, "partition_count": len(partitions),
                     "messages": sum(p["high_watermark"] - p["first_offset"] for p in partitions),
                     "partitions": partitions})
    return rows


def group_rows(groups: GroupCoordinator, topics: Topics) -> list[dict[str, Any]]:
    """One row per consumer group the coordinator knows: state, members, and lag per committed partition."""
    rows = []
    for group in groups.groups.values():
        lags = []
        tracking = TRACKING_PREFIX + group.name
        for name in topics.names():
            for index, queue in enumerate(topics.partitions(name) or []):
                committed = queue.stream_store.tracked_offset(tracking)
                if committed is not None:
                    high = queue.stream_store.next_offset
                    lags.append({"topic": name, "partition": index, "committed_offset": committed,
                                 "high_watermark": high, "lag": max(high - committed, 0)})
        members = [{"member_id": m.member_id, "client_id": m.client_id, "group_instance_id": m.instance_id}
                   for m in group.members.values()]
        rows.append({"vhost": topics.vhost.name, "name": group.name, "state": group.state,
                     "generation": group.generation, "protocol_type": group.protocol_type,
                     "protocol": group.protocol, "member_count": len(members), "members": members,
                     "lag": sum(p["lag"] for p in lags), "partitions": lags})
    return rows
