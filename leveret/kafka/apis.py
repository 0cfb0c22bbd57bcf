"""The Kafka APIs leveret answers: keys, the version ranges advertised, and each one's request and response schema.

Ranges start low and stop before the flexible (compact, tagged-field) versions, except ApiVersions 3, which
every current client sends first (and whose response header stays v0, as Kafka's does). Each range was
checked against what the clients send: librdkafka (confluent-kafka, kcat) picks the highest version both
sides know, kafka-python and aiokafka send fixed versions within these ranges; tests/kafka/test_versions.py
pins them. The schemas are Kafka's message definitions (clients/src/main/resources/common/message/*.json in
Apache Kafka) written in wire.py's form: `(field, kind, first version, last version)`.
"""

from __future__ import annotations

from leveret.kafka.wire import ANY, Nullable, Schema

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 8, 9, 10, 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS, INIT_PRODUCER_ID = 15, 16, 18, 19, 20, 22
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36

# key -> (lowest, highest) version leveret accepts and advertises.
VERSIONS: dict[int, tuple[int, int]] = {
    PRODUCE: (3, 8),
    FETCH: (4, 11),
    LIST_OFFSETS: (1, 5),
    METADATA: (0, 8),
    OFFSET_COMMIT: (2, 7),
    OFFSET_FETCH: (1, 5),
    FIND_COORDINATOR: (0, 2),
    JOIN_GROUP: (0, 5),
    HEARTBEAT: (0, 3),
    LEAVE_GROUP: (0, 3),
    SYNC_GROUP: (0, 3),
    DESCRIBE_GROUPS: (0, 4),
    LIST_GROUPS: (0, 2),
    API_VERSIONS: (0, 3),
    CREATE_TOPICS: (2, 4),
    DELETE_TOPICS: (1, 3),
    INIT_PRODUCER_ID: (0, 1),
    # SASL (sasl.py): the handshake from v1, whose token travels in SaslAuthenticate (v0's raw token frames are
    # what clients send only to brokers without SaslAuthenticate).
    SASL_HANDSHAKE: (1, 1),
    SASL_AUTHENTICATE: (0, 1),
}

THROTTLE = ("throttle_time_ms", "int32", 1, ANY)

# -- produce, fetch, offsets, metadata ---------------------------------------------------------------------

PRODUCE_REQUEST: Schema = (
    ("transactional_id", "nstring", 3, ANY),
    ("acks", "int16", 0, ANY),
    ("timeout_ms", "int32", 0, ANY),
    ("topics", (
        ("name", "string", 0, ANY),
        ("partitions", (
            ("index", "int32", 0, ANY),
            ("records", "nbytes", 0, ANY),
        ), 0, ANY),
    ), 0, ANY),
)
PRODUCE_RESPONSE: Schema = (
    ("topics", (
        ("name", "string", 0, ANY),
        ("partitions", (
            ("index", "int32", 0, ANY),
            ("error_code", "int16", 0, ANY),
            ("base_offset", "int64", 0, ANY),
            ("log_append_time_ms", "int64", 2, ANY),
            ("log_start_offset", "int64", 5, ANY),
            ("record_errors", (("batch_index", "int32", 8, ANY), ("message", "nstring", 8, ANY)), 8, ANY),
            ("error_message", "nstring", 8, ANY),
        ), 0, ANY),
    ), 0, ANY),
    THROTTLE,
)

FETCH_REQUEST: Schema = (
    ("replica_id", "int32", 0, ANY),
    ("max_wait_ms", "int32", 0, ANY),
    ("min_bytes", "int32", 0, ANY),
    ("max_bytes", "int32", 3, ANY),
    ("isolation_level", "int8", 4, ANY),
    ("session_id", "int32", 7, ANY),
    ("session_epoch", "int32", 7, ANY),
    ("topics", (
        ("topic", "string", 0, ANY),
        ("partitions", (
            ("partition", "int32", 0, ANY),
            ("current_leader_epoch", "int32", 9, ANY),
            ("fetch_offset", "int64", 0, ANY),
            ("log_start_offset", "int64", 5, ANY),
            ("partition_max_bytes", "int32", 0, ANY),
        ), 0, ANY),
    ), 0, ANY),
    ("forgotten_topics", (("topic", "string", 7, ANY), ("partitions", ["int32"], 7, ANY)), 7, ANY),
    ("rack_id", "string", 11, ANY),
)
# The partition's records are written by the fetch handler itself (records.py), after this head.
FETCH_RESPONSE_HEAD: Schema = (THROTTLE, ("error_code", "int16", 7, ANY), ("session_id", "int32", 7, ANY))
FETCH_PARTITION_HEAD: Schema = (
    ("partition_index", "int32", 0, ANY),
    ("error_code", "int16", 0, ANY),
    ("high_watermark", "int64", 0, ANY),
    ("last_stable_offset", "int64", 4, ANY),
    ("log_start_offset", "int64", 5, ANY),
    ("aborted_transactions", Nullable((("producer_id", "int64", 4, ANY), ("first_offset", "int64", 4, ANY))), 4, ANY),
    ("preferred_read_replica", "int32", 11, ANY),
)

LIST_OFFSETS_REQUEST: Schema = (
    ("replica_id", "int32", 0, ANY),
    ("isolation_level", "int8", 2, ANY),
    ("topics", (
        ("name", "string", 0, ANY),
        ("partitions", (
            ("partition_index", "int32", 0, ANY),
            ("current_leader_epoch", "int32", 4, ANY),
            ("timestamp", "int64", 0, ANY),
        ), 0, ANY),
    ), 0, ANY),
)
LIST_OFFSETS_RESPONSE: Schema = (
    ("throttle_time_ms", "int32", 2, ANY),
    ("topics", (
        ("name", "string", 0, ANY),
        ("partitions", (
            ("partition_index", "int32", 0, ANY),
            ("error_code", "int16", 0, ANY),
            ("timestamp", "int64", 1, ANY),
            ("offset", "int64", 1, ANY),
            ("leader_epoch", "int32", 4, ANY),
        ), 0, ANY),
    ), 0, ANY),
)

METADATA_REQUEST: Schema = (
    ("topics", Nullable((("name", "string", 0, ANY),)), 0, ANY),
    ("allow_auto_topic_creation", "bool", 4, ANY),
    ("include_cluster_authorized_operations", "bool", 8, ANY),
    ("include_topic_authorized_operations", "bool", 8, ANY),
)
METADATA_RESPONSE: Schema = (
    ("throttle_time_ms", "int32", 3, ANY),
    ("brokers", (
        ("node_id", "int32", 0, ANY),
        ("host", "string", 0, ANY),
        ("port", "int32", 0, ANY),
        ("rack", "nstring", 1, ANY),
    ), 0, ANY),
    ("cluster_id", "nstring", 2, ANY),
    ("controller_id", "int32", 1, ANY),
    ("topics", (
        ("error_code", "int16", 0, ANY),
        ("name", "string", 0, ANY),
        ("is_internal", "bool", 1, ANY),
        ("partitions", (
            ("error_code", "int16", 0, ANY),
            ("partition_index", "int32", 0, ANY),
            ("leader_id", "int32", 0, ANY),
            ("leader_epoch", "int32", 7, ANY),
            ("replica_nodes", ["int32"], 0, ANY),
            ("isr_nodes", ["int32"], 0, ANY),
            ("offline_replicas", ["int32"], 5, ANY),
        ), 0, ANY),
        ("topic_authorized_operations", "int32", 8, ANY),
    ), 0, ANY),
    ("cluster_authorized_operations", "int32", 8, ANY),
)

# -- api versions, producer ids, topics --------------------------------------------------------------------

API_VERSIONS_RESPONSE: Schema = (
    ("error_code", "int16", 0, ANY),
    ("api_keys", (("api_key", "int16", 0, ANY), ("min_version", "int16", 0, ANY), ("max_version", "int16", 0, ANY)),
     0, ANY),
    THROTTLE,
)

INIT_PRODUCER_ID_REQUEST: Schema = (
    ("transactional_id", "nstring", 0, ANY),
    ("transaction_timeout_ms", "int32", 0, ANY),
)
INIT_PRODUCER_ID_RESPONSE: Schema = (
    ("throttle_time_ms", "int32", 0, ANY),
    ("error_code", "int16", 0, ANY),
    ("producer_id", "int64", 0, ANY),
    ("producer_epoch", "int16", 0, ANY),
)

SASL_HANDSHAKE_REQUEST: Schema = (("mechanism", "string", 0, ANY),)
SASL_HANDSHAKE_RESPONSE: Schema = (("error_code", "int16", 0, ANY), ("mechanisms", ["string"], 0, ANY))
SASL_AUTHENTICATE_REQUEST: Schema = (("auth_bytes", "bytes", 0, ANY),)
SASL_AUTHENTICATE_RESPONSE: Schema = (
    ("error_code", "int16", 0, ANY),
    ("error_message", "nstring", 0, ANY),
    ("auth_bytes", "bytes", 0, ANY),
    ("session_lifetime_ms", "int64", 1, ANY),
)

CREATE_TOPICS_REQUEST: Schema = (
    ("topics", (
        ("name", "string", 0, ANY),
        ("num_partitions", "int32", 0, ANY),
        ("replication_factor", "int16", 0, ANY),
        ("assignments", (("partition_index", "int32", 0, ANY), ("broker_ids", ["int32"], 0, ANY)), 0, ANY),
        ("configs", (("name", "string", 0, ANY), ("value", "nstring", 0, ANY)), 0, ANY),
    ), 0, ANY),
    ("timeout_ms", "int32", 0, ANY),
    ("validate_only", "bool", 1, ANY),
)
CREATE_TOPICS_RESPONSE: Schema = (
    ("throttle_time_ms", "int32", 2, ANY),
    ("topics", (("name", "string", 0, ANY), ("error_code", "int16", 0, ANY), ("error_message", "nstring", 1, ANY)),
     0, ANY),
)
DELETE_TOPICS_REQUEST: Schema = (("topic_names", ["string"], 0, ANY), ("timeout_ms", "int32", 0, ANY))
DELETE_TOPICS_RESPONSE: Schema = (THROTTLE, ("responses", (("name", "string", 0, ANY), ("error_code", "int16", 0, ANY)),
                                             0, ANY))

# -- consumer groups ---------------------------------------------------------------------------------------

FIND_COORDINATOR_REQUEST: Schema = (("key", "string", 0, ANY), ("key_type", "int8", 1, ANY))
FIND_COORDINATOR_RESPONSE: Schema = (
    THROTTLE,
    ("error_code", "int16", 0, ANY),
    ("error_message", "nstring", 1, ANY),
    ("node_id", "int32", 0, ANY),
    ("host", "string", 0, ANY),
    ("port", "int32", 0, ANY),
)
JOIN_GROUP_REQUEST: Schema = (
    ("group_id", "string", 0, ANY),
    ("session_timeout_ms", "int32", 0, ANY),
    ("rebalance_timeout_ms", "int32", 1, ANY),
    ("member_id", "string", 0, ANY),
    ("group_instance_id", "nstring", 5, ANY),
    ("protocol_type", "string", 0, ANY),
    ("protocols", (("name", "string", 0, ANY), ("metadata", "bytes", 0, ANY)), 0, ANY),
)
JOIN_GROUP_RESPONSE: Schema = (
    ("throttle_time_ms", "int32", 2, ANY),
    ("error_code", "int16", 0, ANY),
    ("generation_id", "int32", 0, ANY),
    ("protocol_name", "string", 0, ANY),
    ("leader", "string", 0, ANY),
    ("member_id", "string", 0, ANY),
    ("members", (
        ("member_id", "string", 0, ANY),
        ("group_instance_id", "nstring", 5, ANY),
        ("metadata", "bytes", 0, ANY),
    ), 0, ANY),
)
SYNC_GROUP_REQUEST: Schema = (
    ("group_id", "string", 0, ANY),
    ("generation_id", "int32", 0, ANY),
    ("member_id", "string", 0, ANY),
    ("group_instance_id", "nstring", 3, ANY),
    ("assignments", (("member_id", "string", 0, ANY), ("assignment", "bytes", 0, ANY)), 0, ANY),
)
SYNC_GROUP_RESPONSE: Schema = (THROTTLE, ("error_code", "int16", 0, ANY), ("assignment", "bytes", 0, ANY))
HEARTBEAT_REQUEST: Schema = (
    ("group_id", "string", 0, ANY),
    ("generation_id", "int32", 0, ANY),
    ("member_id", "string", 0, ANY),
    ("group_instance_id", "nstring", 3, ANY),
)
ERROR_ONLY_RESPONSE: Schema = (THROTTLE, ("error_code", "int16", 0, ANY))
LEAVE_GROUP_REQUEST: Schema = (
    ("group_id", "string", 0, ANY),
    ("member_id", "string", 0, 2),
    ("members", (("member_id", "string", 3, ANY), ("group_instance_id", "nstring", 3, ANY)), 3, ANY),
)
LEAVE_GROUP_RESPONSE: Schema = (
    THROTTLE,
    ("error_code", "int16", 0, ANY),
    ("members", (
        ("member_id", "string", 3, ANY), ("group_instance_id", "nstring", 3, ANY), ("error_code", "int16", 3, ANY),
    ), 3, ANY),
)
OFFSET_COMMIT_REQUEST: Schema = (
    ("group_id", "string", 0, ANY),
    ("generation_id", "int32", 1, ANY),
    ("member_id", "string", 1, ANY),
    ("retention_time_ms", "int64", 2, 4),
    ("group_instance_id", "nstring", 7, ANY),
    ("topics", (
        ("name", "string", 0, ANY),
        ("partitions", (
            ("partition_index", "int32", 0, ANY),
            ("committed_offset", "int64", 0, ANY),
            ("committed_leader_epoch", "int32", 6, ANY),
            ("committed_metadata", "nstring", 0, ANY),
        ), 0, ANY),
    ), 0, ANY),
)
OFFSET_COMMIT_RESPONSE: Schema = (
    ("throttle_time_ms", "int32", 3, ANY),
    ("topics", (
        ("name", "string", 0, ANY),
        ("partitions", (("partition_index", "int32", 0, ANY), ("error_code", "int16", 0, ANY)), 0, ANY),
    ), 0, ANY),
)
OFFSET_FETCH_REQUEST: Schema = (
    ("group_id", "string", 0, ANY),
    ("topics", Nullable((("name", "string", 0, ANY), ("partition_indexes", ["int32"], 0, ANY))), 0, ANY),
)
OFFSET_FETCH_RESPONSE: Schema = (
    ("throttle_time_ms", "int32", 3, ANY),
    ("topics", (
        ("name", "string", 0, ANY),
        ("partitions", (
            ("partition_index", "int32", 0, ANY),
            ("committed_offset", "int64", 0, ANY),
            ("committed_leader_epoch", "int32", 5, ANY),
            ("metadata", "nstring", 0, ANY),
            ("error_code", "int16", 0, ANY),
        ), 0, ANY),
    ), 0, ANY),
    ("error_code", "int16", 2, ANY),
)
LIST_GROUPS_RESPONSE: Schema = (
    THROTTLE,
    ("error_code", "int16", 0, ANY),
    ("groups", (("group_id", "string", 0, ANY), ("protocol_type", "string", 0, ANY)), 0, ANY),
)
DESCRIBE_GROUPS_REQUEST: Schema = (("groups", ["string"], 0, ANY), ("include_authorized_operations", "bool", 3, ANY))
DESCRIBE_GROUPS_RESPONSE: Schema = (
    THROTTLE,
    ("groups", (
        ("error_code", "int16", 0, ANY),
        ("group_id", "string", 0, ANY),
        ("group_state", "string", 0, ANY),
        ("protocol_type", "string", 0, ANY),
        ("protocol_data", "string", 0, ANY),
        ("members", (
            ("member_id", "string", 0, ANY),
            ("group_instance_id", "nstring", 4, ANY),
            ("client_id", "string", 0, ANY),
            ("client_host", "string", 0, ANY),
            ("member_metadata", "bytes", 0, ANY),
            ("member_assignment", "bytes", 0, ANY),
        ), 0, ANY),
        ("authorized_operations", "int32", 3, ANY),
    ), 0, ANY),
)

# key -> (request schema, response schema); ApiVersions and Fetch responses are written by hand.
SCHEMAS: dict[int, tuple[Schema, Schema | None]] = {
    PRODUCE: (PRODUCE_REQUEST, PRODUCE_RESPONSE),
    FETCH: (FETCH_REQUEST, None),
    LIST_OFFSETS: (LIST_OFFSETS_REQUEST, LIST_OFFSETS_RESPONSE),
    METADATA: (METADATA_REQUEST, METADATA_RESPONSE),
    OFFSET_COMMIT: (OFFSET_COMMIT_REQUEST, OFFSET_COMMIT_RESPONSE),
    OFFSET_FETCH: (OFFSET_FETCH_REQUEST, OFFSET_FETCH_RESPONSE),
    FIND_COORDINATOR: (FIND_COORDINATOR_REQUEST, FIND_COORDINATOR_RESPONSE),
    JOIN_GROUP: (JOIN_GROUP_REQUEST, JOIN_GROUP_RESPONSE),
    HEARTBEAT: (HEARTBEAT_REQUEST, ERROR_ONLY_RESPONSE),
    LEAVE_GROUP: (LEAVE_GROUP_REQUEST, LEAVE_GROUP_RESPONSE),
    SYNC_GROUP: (SYNC_GROUP_REQUEST, SYNC_GROUP_RESPONSE),
    DESCRIBE_GROUPS: (DESCRIBE_GROUPS_REQUEST, DESCRIBE_GROUPS_RESPONSE),
    LIST_GROUPS: ((), LIST_GROUPS_RESPONSE),
    API_VERSIONS: ((), API_VERSIONS_RESPONSE),
    CREATE_TOPICS: (CREATE_TOPICS_REQUEST, CREATE_TOPICS_RESPONSE),
    DELETE_TOPICS: (DELETE_TOPICS_REQUEST, DELETE_TOPICS_RESPONSE),
    INIT_PRODUCER_ID: (INIT_PRODUCER_ID_REQUEST, INIT_PRODUCER_ID_RESPONSE),
    SASL_HANDSHAKE: (SASL_HANDSHAKE_REQUEST, SASL_HANDSHAKE_RESPONSE),
    SASL_AUTHENTICATE: (SASL_AUTHENTICATE_REQUEST, SASL_AUTHENTICATE_RESPONSE),
}
