"""How a shovel end speaks TLS (amqps URIs): leveret's own TLS settings, and RabbitMQ's URI query parameters.

An amqps URI trusts the CA bundle leveret is configured with (`ssl_cacertfile`, the one its listener
verifies clients with) instead of the system's store, so a shovel between two brokers of one private PKI
works without anything in the URI; with no `ssl_cacertfile` the system's CAs are used. RabbitMQ's URI query
parameters override that per shovel, as its amqp_uri reads them: `cacertfile`, `certfile` and `keyfile`
(a client certificate to present), `verify` (`verify_peer`, the default, or `verify_none`) and
`server_name_indication` (the name sent and checked instead of the URI's host, or `disable`).

No client certificate is presented unless the URI names one: leveret's `ssl_certfile` is a server
certificate, which a peer verifying clients may refuse for its purpose (a serverAuth-only key usage).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

VERIFY_MODES = ("verify_peer", "verify_none")


@dataclass(frozen=True)
class ClientTLS:
    """The TLS settings every amqps shovel end starts from (leveret's `ssl_cacertfile`, `ssl_min_version`)."""

    cacertfile: str = ""
    min_version: str = "tlsv1.2"


@dataclass(frozen=True)
class TLSEnd:
    """What one amqps connection needs: the context, and the name for SNI and the hostname check
    (None: the URI's host; "": no SNI, no hostname check)."""

    context: ssl.SSLContext
    server_hostname: str | None


def _query(uri: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(uri).query).items()}


def tls_end(uri: str, defaults: ClientTLS) -> TLSEnd | None:
    """The TLS of one end: None for amqp://. Reads files, so it runs off the event loop (endpoints.py)."""
    if urlsplit(uri).scheme != "amqps":
        return None
    query = _query(uri)
    verify = query.get("verify", "verify_peer")
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify={verify!r}: expected one of {', '.join(VERIFY_MODES)}")
    cafile = query.get("cacertfile") or defaults.cacertfile or None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = (ssl.TLSVersion.TLSv1_3 if defaults.min_version == "tlsv1.3"
                               else ssl.TLSVersion.TLSv1_2)
    if query.get("certfile"):
        context.load_cert_chain(query["certfile"], query.get("keyfile") or None)
    sni = query.get("server_name_indication")
    server_hostname = None if sni is None else "" if sni == "disable" else sni
    if verify == "verify_none" or server_hostname == "":
        context.check_hostname = False  # SNI off means no name to check, as Erlang's ssl does
    if verify == "verify_none":
        context.verify_mode = ssl.CERT_NONE
    return TLSEnd(context, server_hostname)
