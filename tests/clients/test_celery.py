"""Celery end to end: a real worker consumes tasks from the broker and sends results back over it.

The worker runs in a thread of this process (celery's own `start_worker` test helper, solo pool),
with remote control, gossip, mingle and events off so that it only uses the task queue and the
rpc:// result backend. Every queue name is unique to the test, so a shared broker is not disturbed.
"""

from __future__ import annotations

import contextlib

import celery
import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state

WAIT = 15.0


@contextlib.contextmanager
def running_worker(app):
    """A solo-pool worker thread consuming from `app`'s broker for the duration of the block."""
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=WAIT) as worker:
        yield worker
        # start_worker asks the worker to stop and joins it, but the worker's event loop only looks at
        # the request between polls, which sleep up to 10 s when idle; waking the loop from here (its
        # waker is thread safe) makes the stop take milliseconds.
        worker_state.should_terminate = 0
        worker.hub.call_soon(lambda: None)


@pytest.fixture
def app(amqp_url, unique, cleanup):
    application = celery.Celery(unique("app"), broker=amqp_url, backend="rpc://")
    task_queue = cleanup.queue(amqp_url, unique("tasks"))
    cleanup.exchange(amqp_url, task_queue)
    application.conf.update(
        task_default_queue=task_queue,
        task_default_exchange=task_queue,
        task_default_routing_key=task_queue,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=1,
        result_persistent=False,
        worker_hijack_root_logger=False,
    )

    @application.task(name="add", shared=False)
    def add(x, y):
        return x + y

    @application.task(name="fail", shared=False)
    def fail(text):
        raise ValueError(text)

    @application.task(name="chain_step", acks_late=True, shared=False)
    def chain_step(items, item):
        return items + [item]

    yield application
    application.close()


def test_worker_runs_a_task_and_returns_its_result_over_rpc(app):
    with running_worker(app):
        result = app.tasks["add"].delay(2, 40)
        assert result.get(timeout=WAIT) == 42
        assert result.successful()


def test_task_exception_is_reported_back_to_the_caller(app):
    with running_worker(app):
        result = app.tasks["fail"].delay("boom")
        with pytest.raises(ValueError, match="boom"):
            result.get(timeout=WAIT)
        assert result.state == "FAILURE"


def test_chain_of_late_acked_tasks_runs_in_order(app):
    with running_worker(app):
        step = app.tasks["chain_step"]
        result = (step.s([], "a") | step.s("b") | step.s("c")).delay()
        assert result.get(timeout=WAIT) == ["a", "b", "c"]


def test_tasks_sent_before_the_worker_starts_wait_in_the_queue(app):
    results = [app.tasks["add"].delay(i, i) for i in range(5)]
    with running_worker(app):
        assert [r.get(timeout=WAIT) for r in results] == [0, 2, 4, 6, 8]
