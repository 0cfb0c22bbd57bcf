"""The Kafka side in the management API, /metrics and `leveret list topics|groups`."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest
from click.testing import CliRunner

from leveret.cli import main

kafka = pytest.importorskip("kafka")


def _get(broker, path: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{broker.server.http_port}{path}")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def test_topics_groups_and_lag_are_listed(leveret_broker, kafka_bootstrap: str) -> None:
    admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([kafka.admin.NewTopic("listed", 2, 1)])
    admin.close()
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(10):
        producer.send("listed", value=b"%d" % i, partition=i % 2)
    producer.flush(10)
    producer.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id="watchers", enable_auto_commit=False)
    consumer.assign([kafka.TopicPartition("listed", 0)])
    consumer.commit({kafka.TopicPartition("listed", 0): kafka.OffsetAndMetadata(2, "", -1)})
    consumer.close()

    (topic,) = json.loads(_get(leveret_broker, "/api/topics/%2F"))
    assert (topic["name"], topic["partition_count"], topic["messages"]) == ("listed", 2, 10)
    assert [p["high_watermark"] for p in topic["partitions"]] == [5, 5]
    (group,) = json.loads(_get(leveret_broker, "/api/groups"))
    assert (group["name"], group["lag"]) == ("watchers", 3)
    assert group["partitions"] == [{"topic": "listed", "partition": 0, "committed_offset": 2, "high_watermark": 5,
                                    "lag": 3}]
    metrics = _get(leveret_broker, "/metrics")
    assert 'leveret_kafka_consumergroup_lag{consumergroup="watchers",topic="listed",partition="0"} 3' in metrics
    assert 'leveret_kafka_topic_partition_current_offset{topic="listed",partition="1"} 5' in metrics

    url = f"http://127.0.0.1:{leveret_broker.server.http_port}"
    topics = CliRunner().invoke(main, ["list", "topics", "--url", url])
    assert topics.exit_code == 0, topics.output
    assert topics.output.splitlines()[1].split() == ["/", "listed", "2", "10"]
    groups = CliRunner().invoke(main, ["list", "groups", "--url", url])
    assert groups.output.splitlines()[1].split()[:2] == ["/", "watchers"]
    assert groups.output.splitlines()[1].split()[-1] == "3"
