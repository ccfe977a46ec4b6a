"""Reading ``tls_server_config`` into ``TLSSettings``, with the exporter-toolkit's rules."""

from __future__ import annotations

import logging

import yaml

from .gonames import (
    CERTIFICATE_REQUIRED,
    CIPHER_SUITES,
    CLIENT_AUTH,
    CLIENT_AUTH_SHOWN,
    CURVES,
    TLS_VERSIONS,
    UNVERIFIABLE_CLIENT_AUTH,
)
from .tls import TLSSettings
from .yamlnodes import NodeReader

log = logging.getLogger(__name__)

SECTION = "tls_server_config"
_TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)


def _key(name: str) -> str:
    return f"{SECTION}.{name}"


def read_tls_section(reader: NodeReader, node: yaml.Node | None) -> TLSSettings | None:
    """The TLS settings, or None when the section turns no TLS on (as in Go)."""
    f = reader.fields(node, SECTION, _TLS_KEYS)
    cert_file = reader.file(f.get("cert_file"), _key("cert_file"))
    key_file = reader.file(f.get("key_file"), _key("key_file"))
    client_ca_file = reader.file(f.get("client_ca_file"), _key("client_ca_file"))
    cert = reader.string(f.get("cert"), _key("cert"))
    key = reader.string(f.get("key"), _key("key"))
    client_ca = reader.string(f.get("client_ca"), _key("client_ca"))
    client_auth_type = (
        reader.choice(
            f.get("client_auth_type"), _key("client_auth_type"), CLIENT_AUTH, CLIENT_AUTH_SHOWN
        )
        or ""
    )
    sans_node = f.get("client_allowed_sans")
    sans = tuple(name for name, _ in reader.string_list(sans_node, _key("client_allowed_sans")))
    versions = tuple(TLS_VERSIONS)
    min_version = reader.choice(f.get("min_version"), _key("min_version"), TLS_VERSIONS, versions)
    max_version = reader.choice(f.get("max_version"), _key("max_version"), TLS_VERSIONS, versions)
    ciphers = []
    for name, item in reader.string_list(f.get("cipher_suites"), _key("cipher_suites")):
        if name not in CIPHER_SUITES:
            raise reader.error(
                item,
                _key("cipher_suites"),
                f"expected cipher suite names as Go spells them, such as "
                f"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, got {name!r}",
            )
        openssl_name = CIPHER_SUITES[name]
        if openssl_name is not None:
            ciphers.append(openssl_name)
    curves: list[str] = []  # Go's names, each once, in the file's order
    for name, item in reader.string_list(f.get("curve_preferences"), _key("curve_preferences")):
        if name not in CURVES:
            raise reader.error(
                item,
                _key("curve_preferences"),
                f"expected one of {', '.join(CURVES)}, got {name!r}",
            )
        if name not in curves:
            curves.append(name)
    prefer_server = reader.boolean(
        f.get("prefer_server_cipher_suites"), _key("prefer_server_cipher_suites"), True
    )

    if not (
        cert_file or cert or key_file or key or client_ca_file or client_ca or client_auth_type
    ):
        if sans:
            log.warning(
                "client_allowed_sans has no effect: the file turns no TLS on",
                extra={"file": reader.path, "key": _key("client_allowed_sans")},
            )
        return None  # no TLS, as in Go, whatever versions or suites are given
    for name, inline, path in (
        ("cert", cert, cert_file),
        ("key", key, key_file),
        ("client_ca", client_ca, client_ca_file),
    ):
        if inline and path:
            raise reader.error(
                f.get(name),
                _key(name),
                f"set together with {name}_file; expected only one of {name} (inline PEM) "
                f"and {name}_file",
            )
    if not (cert_file or cert):
        raise reader.error(
            node, _key("cert_file"), "missing; TLS needs a certificate: cert_file, or cert inline"
        )
    if not (key_file or key):
        given = "cert_file" if cert_file else "cert"
        raise reader.error(
            node,
            _key("key_file"),
            f"missing; {given} is set, and TLS needs the private key of that certificate: "
            "key_file, or key inline",
        )
    if (client_ca_file or client_ca) and client_auth_type in ("", "NoClientCert"):
        given = "client_ca_file" if client_ca_file else "client_ca"
        raise reader.error(
            f.get(given),
            _key("client_auth_type"),
            f"expected a client certificate policy (such as RequireAndVerifyClientCert) "
            f"since {given} is set",
        )
    if sans and client_auth_type not in CERTIFICATE_REQUIRED:
        raise reader.error(
            sans_node,
            _key("client_auth_type"),
            "expected RequireAnyClientCert or RequireAndVerifyClientCert since "
            "client_allowed_sans is set: with another policy a client may come without a "
            "certificate to check",
        )
    if client_auth_type in UNVERIFIABLE_CLIENT_AUTH:
        log.warning(
            "client certificates will be verified, since Python's ssl module cannot "
            "accept them unverified as Go's %s does",
            client_auth_type,
            extra={
                "file": reader.path,
                "key": _key("client_auth_type"),
                "verified_against": client_ca_file
                or ("the inline client_ca" if client_ca else "the system's trusted CAs"),
            },
        )
    if len(curves) > 1:
        log.warning(
            "curve_preferences lists several curves, and Python's ssl module can set only "
            "one: OpenSSL's default groups are used instead",
            extra={
                "file": reader.path,
                "key": _key("curve_preferences"),
                "curves": ",".join(curves),
            },
        )
    tls = TLSSettings(
        config_path=reader.path,
        cert_file=cert_file,
        key_file=key_file,
        client_ca_file=client_ca_file,
        client_auth_type=client_auth_type,
        verify_mode=CLIENT_AUTH[client_auth_type],
        min_version=TLS_VERSIONS[min_version or "TLS12"],
        max_version=TLS_VERSIONS[max_version or "TLS13"],
        openssl_ciphers=":".join(ciphers) if ciphers else None,
        prefer_server_cipher_suites=prefer_server,
        cert=cert,
        key=key,
        client_ca=client_ca,
        client_allowed_sans=sans,
        ecdh_curve=CURVES[curves[0]] if len(curves) == 1 else None,
    )
    if tls.min_version > tls.max_version:
        log.warning(
            "min_version is above max_version: every TLS handshake will fail",
            extra={"file": reader.path, "key": _key("min_version")},
        )
    return tls
