"""The node's metric families: identity, resources, alarms, authentication, and leveret's own figures.

Under rabbitmq_prometheus's names, labels and types (checked against RabbitMQ 3.10 in
tests/diff/test_metrics_diff.py), so the stock RabbitMQ-Overview Grafana dashboard and RabbitMQ's alert
rules read them unchanged. Leveret's own figures (memory budget, output pauses, group commits and their
fsync time) are `leveret_*`.
"""

from __future__ import annotations

import hashlib
import platform
import resource
import time
from typing import Any

import psutil

from leveret import __version__
from leveret.http.exposition import Family, gauge
from leveret.http.nodes import node_name, output_paused, resources
from leveret.http.overview import memory_budget
from leveret.http.kafka import kafka_families
from leveret.http.shovels import shovel_families
from leveret.http.target import ManagementTarget

# When this process started, for process_start_time_seconds (RabbitMQ exposes the same for its VM).
_PROCESS = psutil.Process()
_STARTED = _PROCESS.create_time()

# rabbitmq_prometheus's authentication counters: (name, help, which outcomes each counts).
AUTH_COUNTERS = (
    ("rabbitmq_auth_attempts_total", "Total number of authorization attempts", (True, False)),
    ("rabbitmq_auth_attempts_succeeded_total", "Total number of successful authentication attempts", (True,)),
    ("rabbitmq_auth_attempts_failed_total", "Total number of failed authentication attempts", (False,)),
)
# Both protocols always appear, so a rate of failures is defined before the first one.
AUTH_PROTOCOLS = ("amqp091", "http")


def auth_families(attempts: dict[tuple[str, bool], int]) -> list[Family]:
    """The authentication attempts (the access registry's counts) under rabbitmq_prometheus's names."""
    protocols = sorted(set(AUTH_PROTOCOLS).union(protocol for protocol, _ in attempts))
    families = []
    for name, help_text, outcomes in AUTH_COUNTERS:
        family = Family(name, help_text, "counter")
        for protocol in protocols:
            family.sample(sum(attempts.get((protocol, ok), 0) for ok in outcomes), protocol=protocol)
        families.append(family)
    return families


def info_families(target: ManagementTarget) -> list[Family]:
    """rabbitmq_build_info and rabbitmq_identity_info: the labels every dashboard query joins on."""
    build = Family("rabbitmq_build_info", "RabbitMQ & Erlang/OTP version info", "untyped")
    # The broker's own version; erlang_version carries the runtime's (Python's), as the label means there.
    build.sample(1, rabbitmq_version=__version__, prometheus_plugin_version=__version__,
                 prometheus_client_version="none", erlang_version=platform.python_version())
    node = node_name()
    # Permanent per data directory (RabbitMQ's is made once per cluster and kept in its database).
    cluster_id = hashlib.sha256(target.settings.data_dir.encode("utf-8")).hexdigest()[:22]
    identity = Family("rabbitmq_identity_info", "RabbitMQ node & cluster identity info", "untyped")
    identity.sample(1, rabbitmq_node=node, rabbitmq_cluster=node,
                    rabbitmq_cluster_permanent_id=f"leveret-cluster-id-{cluster_id}")
    return [build, identity]


def _open_fds() -> int:
    try:
        return _PROCESS.num_fds()
    except (AttributeError, psutil.Error):  # not on every platform
        return 0


def metrics_only_families(target: ManagementTarget) -> list[Family]:
    """The alarms, 1 while in effect, and the start time: RabbitMQ writes them on /metrics only, not on
    /metrics/per-object."""
    node = resources(target)
    return [
        gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              int(_STARTED)),
        gauge("rabbitmq_alarms_file_descriptor_limit", "is 1 if file descriptor limit alarm is in effect", 0,
              "untyped"),  # leveret has no descriptor alarm: never in effect
        gauge("rabbitmq_alarms_free_disk_space_watermark",
              "is 1 if free disk space watermark alarm is in effect", int(node["disk_free_alarm"]), "untyped"),
        gauge("rabbitmq_alarms_memory_used_watermark", "is 1 if VM memory watermark alarm is in effect",
              int(node["mem_alarm"]), "untyped"),
    ]


def resource_families(target: ManagementTarget) -> list[Family]:
    """Memory, disk, descriptors and sockets, as rabbitmq_prometheus's node families."""
    node = resources(target)
    max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # Every socket is a descriptor; a max_connections setting lowers the socket limit below that.
    max_sockets = target.settings.max_connections if target.settings.max_connections >= 0 else max_fds
    return [
        gauge("rabbitmq_process_open_fds", "Open file descriptors", _open_fds()),
        gauge("rabbitmq_process_open_tcp_sockets", "Open TCP sockets", len(target.connections)),
        gauge("rabbitmq_process_resident_memory_bytes", "Memory used in bytes", node["mem_used"]),
        gauge("rabbitmq_disk_space_available_bytes", "Disk space available in bytes", node["disk_free"]),
        gauge("rabbitmq_process_max_fds", "Open file descriptors limit", max_fds),
        gauge("rabbitmq_process_max_tcp_sockets", "Open TCP sockets limit", max_sockets),
        gauge("rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes", node["mem_limit"]),
        gauge("rabbitmq_disk_space_available_limit_bytes", "Free disk space low watermark in bytes",
              node["disk_free_limit"]),
        gauge("rabbitmq_erlang_uptime_seconds", "Node uptime", round(time.time() - _STARTED, 3)),
    ]


def leveret_families(target: ManagementTarget) -> list[Family]:
    """Leveret's own figures, which RabbitMQ has no name for."""
    node = resources(target)
    budget = memory_budget(target)
    return [
        gauge("leveret_memory_budget_used_bytes",
              "Bytes of queued message bodies held in memory (transient backlogs spill past the limit).",
              budget["used"]),
        gauge("leveret_memory_budget_limit_bytes", "The memory_budget setting.", budget["limit"]),
        gauge("leveret_memory_alarm", "1 while the memory alarm blocks publishers, 0 otherwise.",
              int(node["mem_alarm"])),
        gauge("leveret_memory_resident_bytes", "The broker process's resident set size at the last memory check.",
              node["mem_used"]),
        gauge("leveret_memory_high_watermark_bytes", "The memory_high_watermark setting in bytes.",
              node["mem_limit"]),
        gauge("leveret_connections_output_paused",
              "Connections not being read because they owe their client more than max_output_buffer.",
              output_paused(target)),
        gauge("leveret_output_pauses_total", "Times a connection stopped being read because of its unsent output.",
              getattr(target, "output_pauses", 0), "counter"),
    ]


def histogram_family(name: str, help_text: str, histogram: Any) -> Family:
    """A histogram (server/histogram.py) as a Prometheus histogram family."""
    family = Family(name, help_text, "histogram")
    for bound, count in histogram.cumulative():
        family.sample(count, "_bucket", le="+Inf" if bound == float("inf") else repr(float(bound)))
    family.sample(histogram.sum, "_sum")
    family.sample(histogram.count, "_count")
    return family


def commit_families(target: ManagementTarget) -> list[Family]:
    """The group commits: how long each took to be durable, and how many confirms each released."""
    durability = getattr(target, "durability", None)
    if durability is None:
        return []
    return [
        histogram_family("leveret_commit_seconds",
                         "Seconds from a group commit's start to its fsync's end (publisher confirms wait this long).",
                         durability.commit_seconds),
        histogram_family("leveret_commit_batch_publishes",
                         "Publisher confirms released by one group commit (its fsync covered them all).",
                         durability.batch_publishes),
        gauge("leveret_commits_failed_total", "Group commits whose write or fsync failed (their publishes nacked).",
              durability.failed_commits, "counter"),
    ]


def node_families(target: ManagementTarget, per_object: bool = False) -> list[Family]:
    """Every node-level family, in the order /metrics writes them."""
    alarms = [] if per_object else metrics_only_families(target)
    return [*alarms, *resource_families(target), *auth_families(target.users.auth_attempts), *info_families(target),
            *leveret_families(target), *shovel_families(target), *commit_families(target),
            *kafka_families(target)]
