"""TLS for the AMQP listener (amqps): the server's `ssl.SSLContext` from the ssl_* settings, and the
client certificate's identity for the EXTERNAL mechanism (server/protocol.py's `TLSProtocol` asks it).

Only TLS connections pay for any of this: the plain listener and its connections never reach this module.
The TLS handshake completes before a connection's protocol object hears of it, so a plain-text client, an
untrusted certificate or a client that gives up on our certificate costs one failed handshake and nothing
else (asyncio logs it at debug level only).
"""

from __future__ import annotations

import ssl
from typing import Any

from leveret.config import Settings, SettingsError, check_tls_settings

_MIN_VERSIONS = {"tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}


def server_context(settings: Settings) -> ssl.SSLContext:
    """The context the amqps listener serves with; SettingsError (one line, naming the setting) when a file
    is missing or does not hold what it should."""
    check_tls_settings(settings)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MIN_VERSIONS[settings.ssl_min_version]
    try:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        # load_cert_chain does not say which of the two files it could not use: name both.
        raise SettingsError("ssl_certfile/ssl_keyfile", f"{settings.ssl_certfile}, {settings.ssl_keyfile}",
                            f"not a PEM certificate and its private key ({_reason(exc)})") from None
    if settings.ssl_verify == "verify_peer":
        try:
            context.load_verify_locations(cafile=settings.ssl_cacertfile)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError("ssl_cacertfile", settings.ssl_cacertfile,
                                f"not a PEM file of CA certificates ({_reason(exc)})") from None
        # CERT_OPTIONAL still refuses a certificate that does not verify; it only lets a client present none.
        context.verify_mode = ssl.CERT_REQUIRED if settings.ssl_fail_if_no_peer_cert else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)


def certificate_common_name(certificate: dict[str, Any] | None) -> str | None:
    """The subject's common name of a verified peer certificate (`SSLObject.getpeercert()`), or None.

    As RabbitMQ's rabbitmq_auth_mechanism_ssl with ssl_cert_login_from = common_name (docs/security.md);
    a subject with several CNs names its first."""
    if not certificate:
        return None  # no certificate, or one that was not verified (verify_none: getpeercert() is {})
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None



# The attribute names RabbitMQ writes in a distinguished name (rabbit_cert_info), by the names Python's
# getpeercert() gives them; any other attribute keeps Python's name.
_DN_NAMES = {
    "commonName": "CN", "surname": "SN", "givenName": "GIVENNAME", "initials": "INITIALS",
    "generationQualifier": "GENERATIONQUALIFIER", "localityName": "L", "stateOrProvinceName": "ST",
    "organizationName": "O", "organizationalUnitName": "OU", "title": "TITLE", "countryName": "C",
    "serialNumber": "SERIALNUMBER", "pseudonym": "PSEUDONYM", "domainComponent": "DC",
    "emailAddress": "EMAILADDRESS", "streetAddress": "STREET", "userId": "UID",
}
_DN_SPECIAL = frozenset(b'"+,;<>\\')


def certificate_distinguished_name(certificate: dict[str, Any] | None) -> str | None:
    """The subject of a verified peer certificate as RabbitMQ writes it for ssl_cert_login_from =
    distinguished_name (its default): RFC 4514 order (the last RDN first), "," between RDNs, "+" inside a
    multi-valued one, values escaped as RFC 4514 says and non-printable or non-ASCII bytes as \\XX."""
    if not certificate or not certificate.get("subject"):
        return None
    rdns = ["+".join(f"{_DN_NAMES.get(key, key)}={_escape_dn_value(value)}" for key, value in rdn)
            for rdn in certificate["subject"]]
    return ",".join(reversed(rdns))


def _escape_dn_value(value: str) -> str:
    raw = value.encode("utf-8")
    out = []
    for index, byte in enumerate(raw):
        if byte < 32 or byte >= 126:
            out.append(f"\\{byte:02X}")
        elif (byte in _DN_SPECIAL or (index == 0 and byte in b"# ")
              or (index == len(raw) - 1 and byte == 0x20)):
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return "".join(out)


def certificate_user(certificate: dict[str, Any] | None, login_from: str) -> str | None:
    """The user a verified peer certificate names for EXTERNAL, by the ssl_cert_login_from setting."""
    if login_from == "distinguished_name":
        return certificate_distinguished_name(certificate)
    return certificate_common_name(certificate)
