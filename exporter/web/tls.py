"""The server-side TLS context of ``tls_server_config``, and its certificate renewal.

Certificates, keys and client CAs come from files (``cert_file``, ``key_file``,
``client_ca_file``) or inline PEM text (``cert``, ``key``, ``client_ca``). Python's ``ssl``
loads a certificate and key only from files, so inline ones are handed over through a private
in-memory file (a temporary file readable only by this user where there is none), closed as
soon as they are loaded.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import ssl
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import WebConfigError

log = logging.getLogger(__name__)

_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


@dataclass(frozen=True, slots=True)
class TLSSettings:
    config_path: str
    cert_file: str
    key_file: str
    client_ca_file: str
    client_auth_type: str
    verify_mode: ssl.VerifyMode
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    openssl_ciphers: str | None
    prefer_server_cipher_suites: bool
    cert: str = ""  # inline PEM, when cert_file is not set
    key: str = field(default="", repr=False)  # inline PEM, when key_file is not set; a secret
    client_ca: str = ""  # inline PEM, when client_ca_file is not set
    client_allowed_sans: tuple[str, ...] = ()
    ecdh_curve: str | None = None  # OpenSSL's name of the one curve key exchange may use


def build_context(tls: TLSSettings) -> ssl.SSLContext:
    """A server context for these settings; raises WebConfigError."""
    where = f"{tls.config_path}: tls_server_config"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0 and 1.1; a web config may still ask for them explicitly.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = tls.min_version
        context.maximum_version = tls.max_version
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.openssl_ciphers is not None:
        context.set_ciphers(tls.openssl_ciphers)
    if tls.ecdh_curve is not None:
        # With OpenSSL 3 this is the only group offered, in TLS 1.2 and 1.3 alike.
        context.set_ecdh_curve(tls.ecdh_curve)
    # The server speaks HTTP/1.1 only; saying so lets HTTP/2-capable clients settle at once.
    context.set_alpn_protocols(["http/1.1"])

    cert_key, cert_pem, cert_shown = _pem(where, "cert", tls.cert_file, tls.cert)
    key_key, key_pem, key_shown = _pem(where, "key", tls.key_file, tls.key)
    if "-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise WebConfigError(
            f"{where}.{cert_key}: expected a PEM certificate, found none in {cert_shown}"
        )
    if not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", key_pem):
        raise WebConfigError(
            f"{where}.{key_key}: expected a PEM private key, found none in {key_shown}"
        )
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in key_pem or "Proc-Type: 4,ENCRYPTED" in key_pem:
        raise WebConfigError(
            f"{where}.{key_key}: expected an unencrypted private key, {key_shown} is "
            "protected by a passphrase"
        )
    try:
        with (
            _readable_file(tls.cert_file, tls.cert) as cert_path,
            _readable_file(tls.key_file, tls.key) as key_path,
        ):
            # Should a passphrase still be asked for, it is refused rather than read from a tty.
            context.load_cert_chain(cert_path, key_path, password=lambda: b"")
    except (ssl.SSLError, OSError) as err:
        if isinstance(err, ssl.SSLError) and err.reason == "KEY_VALUES_MISMATCH":
            raise WebConfigError(
                f"{where}.{key_key}: expected the private key of the certificate in "
                f"{cert_shown}, {key_shown} holds another key"
            ) from None
        raise WebConfigError(
            f"{where}.{cert_key}: expected a PEM certificate {cert_shown} usable with the "
            f"PEM private key {key_shown}: {_ssl_reason(err)}"
        ) from None

    context.verify_mode = tls.verify_mode
    if tls.client_ca_file or tls.client_ca:
        ca_key, ca_pem, _ = _pem(where, "client_ca", tls.client_ca_file, tls.client_ca)
        loaded = 0
        for block in _PEM_CERTIFICATE.findall(ca_pem):
            try:
                context.load_verify_locations(cadata=block)
                loaded += 1
            except ssl.SSLError:
                continue
        if loaded == 0 and context.verify_mode != ssl.CERT_NONE:
            log.warning(
                "the client CA holds no usable PEM certificate; "
                "every client certificate will be refused",
                extra={
                    "file": tls.config_path,
                    "key": f"tls_server_config.{ca_key}",
                    "path": tls.client_ca_file or "(inline)",
                },
            )
    elif context.verify_mode != ssl.CERT_NONE:
        # As in Go: without a client CA, client certificates are checked against the
        # system's trusted CAs.
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return context


def _pem(where: str, name: str, path: str, inline: str) -> tuple[str, str, str]:
    """(the key it came from, the PEM text, how to name it in a message) of a file or text."""
    if not path:
        return name, inline, f"(inline {name})"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f"{name}_file", f.read(), repr(path)
    except OSError as err:
        raise WebConfigError(f"{where}.{name}_file: cannot read {path!r}: {err.strerror}") from None


@contextlib.contextmanager
def _readable_file(path: str, text: str) -> Iterator[str]:
    """``path`` itself, or a private file holding ``text`` for as long as the block runs."""
    if path:
        yield path
        return
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("web-config-pem", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, text.encode("utf-8"))
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, temp_path = tempfile.mkstemp(suffix=".pem")  # readable by this user only
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        yield temp_path
    finally:
        os.unlink(temp_path)


def _ssl_reason(err: Exception) -> str:
    if isinstance(err, ssl.SSLError):
        return str(err.reason or "invalid PEM data")
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)


def client_sans(peercert: dict[str, Any] | None) -> list[str]:
    """The subject alternative names of a verified peer certificate, spelled as Go spells them
    (DNS names, e-mail addresses, IP addresses and URIs)."""
    names: list[str] = []
    for entry in (peercert or {}).get("subjectAltName", ()):
        if len(entry) != 2:
            continue
        kind, value = entry
        if kind == "IP Address":
            try:
                names.append(str(ipaddress.ip_address(str(value).strip())))
            except ValueError:
                continue
        elif kind in ("DNS", "email", "URI"):
            names.append(str(value))
    return names


class CertificateReloader:
    """Serves the current certificate, reloading it when its files change."""

    def __init__(self, tls: TLSSettings) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._files = _files_signature(tls)
        self._current = build_context(tls)
        self.context = self._current
        self.context.sni_callback = self._on_client_hello

    def _on_client_hello(self, conn: Any, server_name: str | None, context: Any) -> None:
        # Called for every handshake, with or without SNI, before the certificate is sent.
        current = self._current_context()
        if current is not context:
            conn.context = current

    def _current_context(self) -> ssl.SSLContext:
        files = _files_signature(self._tls)
        if files == self._files:
            return self._current
        with self._lock:
            if files != self._files:
                self._files = files
                try:
                    self._current = build_context(self._tls)
                    log.info("TLS certificate reloaded", extra={"path": self._tls.cert_file})
                except WebConfigError as err:
                    log.warning(
                        "TLS certificate reload failed; the previous one keeps serving",
                        extra={"error": str(err)},
                    )
            return self._current


def _files_signature(tls: TLSSettings) -> tuple[tuple[int, int, int], ...]:
    signature = []
    for file in (tls.cert_file, tls.key_file):
        if not file:
            continue  # inline: changes only with the web config file
        try:
            st = os.stat(file)
            signature.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            signature.append((-1, -1, -1))
    return tuple(signature)
