"""Every machine of the differential fuzzer, in the order the runners take them (CI's profile in
test_difffuzz.py, the long one in tools/difffuzz.py)."""

from __future__ import annotations

from machines import HeadersTyping, QueueArguments, QueueLimits, TopicRouting
from machines_deadletter import DeadLetterChains, ExpiryAndLimits
from machines_delivery import ConsumeAndQos, Transactions
from machines_exchanges import ExchangeBindings

MACHINES = (HeadersTyping, TopicRouting, QueueArguments, QueueLimits, DeadLetterChains, ExpiryAndLimits,
            ConsumeAndQos, Transactions, ExchangeBindings)
