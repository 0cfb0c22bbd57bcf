"""Celery over amqps: a worker and a caller that log in with a client certificate (EXTERNAL)."""

from __future__ import annotations

import ssl

import celery

from leveret.embedded import EmbeddedBroker
from tests.clients.test_celery import WAIT, running_worker
from tests.tls.conftest import tls_settings


def test_a_task_and_its_result_travel_over_tls_as_the_certificates_user(pki):
    with EmbeddedBroker(**tls_settings(pki)) as broker:
        users = broker.server.users
        users.add_user("nopass", None)  # a user without a password: the certificate is its only way in
        users.set_permissions("nopass", "/", ".*", ".*", ".*")
        nopass = pki.clients["nopass"]
        app = celery.Celery("tls-app", broker=f"amqp://localhost:{broker.ssl_port}//", backend="rpc://")
        app.conf.update(
            broker_use_ssl={"ca_certs": pki.ca, "certfile": nopass.cert, "keyfile": nopass.key,
                            "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "localhost"},
            broker_login_method="EXTERNAL",
            task_default_queue="tls-tasks",
            worker_enable_remote_control=False,
            worker_send_task_events=False,
            broker_connection_retry_on_startup=False,
            broker_connection_max_retries=1,
            result_persistent=False,
            worker_hijack_root_logger=False,
        )

        @app.task(name="add", shared=False)
        def add(x, y):
            return x + y

        try:
            with running_worker(app):
                assert app.tasks["add"].delay(2, 40).get(timeout=WAIT) == 42
                # The worker's and the caller's connections (the result came back over one of them) all
                # came in by certificate.
                assert {conn.session.username for conn in list(broker.server.connections)} == {"nopass"}
        finally:
            app.close()
