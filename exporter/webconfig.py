"""TLS and basic auth from a ``--web.config.file``, the YAML format of the Prometheus
exporter-toolkit that the Go exporters take.

A file that ``promtool check web-config`` accepts loads here, and the same mistakes are refused,
each with an error naming the file, the line, the key and what was expected. Relative paths are
resolved against the directory of the web config file. Example::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
    basic_auth_users:
      prometheus: $2b$12$...   # a bcrypt hash, never a password

Where Python's ``ssl`` module cannot express a Go setting, the closest stricter behaviour is used
(see ``docs/web-config.md``): ``RequireAnyClientCert`` verifies the client certificate,
``curve_preferences`` is checked but OpenSSL's default groups are kept, ``http2`` is checked but
the server speaks HTTP/1.1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import selectors
import socket
import ssl
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any

import bcrypt
import yaml

log = logging.getLogger(__name__)

WWW_AUTHENTICATE = 'Basic realm="convocore-crawler-exporter", charset="UTF-8"'

DEFAULT_HANDSHAKE_TIMEOUT = 10.0

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_HTTP_KEYS = ("http2", "headers")

# The Go names of client_auth_type and what Python's ssl can do for each. Go's
# RequestClientCert asks for a certificate but neither requires nor verifies it, so access is
# the same as not asking. Go's RequireAnyClientCert accepts any certificate unverified, which
# OpenSSL through Python cannot do: the certificate is verified instead (stricter).
_CLIENT_AUTH: dict[str, ssl.VerifyMode] = {
    "": ssl.CERT_NONE,
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireClientCert": ssl.CERT_REQUIRED,  # the exporter-toolkit's old name for the above
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_CLIENT_AUTH_SHOWN = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
_UNVERIFIABLE_CLIENT_AUTH = frozenset({"RequireAnyClientCert", "RequireClientCert"})

_TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's names of the cipher suites it accepts (tls.CipherSuites()) and OpenSSL's names for them.
# TLS 1.3 suites (None) are accepted but not configurable, in Go as in OpenSSL through Python.
_CIPHER_SUITES: dict[str, str | None] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}
_CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")

# The response headers the exporter-toolkit lets a web config set; None allows any value.
_ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

_BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt only ever uses this many; Go and htpasswd truncate too
_STANDARD_BCRYPT = re.compile(rb"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_CACHE_SIZE = 256
_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)
_SHOWABLE_KEY = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")


class WebConfigError(Exception):
    """A web config file that cannot be used; ``str()`` is the message for the user."""


def load_web_config(path: str) -> WebConfig:
    """Read, validate and prepare the web config file at ``path``.

    Certificates and keys are loaded now, so a mistake shows at start-up, not at the first
    scrape. Raises ``WebConfigError``.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise WebConfigError(f"{path}: cannot read the web config file: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebConfigError(f"{path}: expected UTF-8 text") from None
    return _Parser(path).parse(text)


class WebConfig:
    """A loaded web config: the TLS context, the basic auth users and the extra headers.

    Immutable once loaded apart from its private caches, and safe to share between threads.
    """

    def __init__(
        self,
        path: str,
        tls: _TLSSettings | None,
        users: Mapping[bytes, bytes],
        headers: Mapping[str, str],
    ) -> None:
        self._path = path
        self._users = tuple(users.items())
        # Unknown users are checked against a real hash too, so that a wrong user name costs
        # as much time as a wrong password and the answer time does not tell which it was.
        self._decoy_hash = self._users[0][1] if self._users else b""
        self._headers = MappingProxyType(dict(headers))
        self._tls_enabled = tls is not None
        self._certificates = _CertificateReloader(tls) if tls is not None else None
        self._cache_key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        # One bcrypt at a time, as the Go exporters do: a flood of wrong passwords costs one
        # core, and a correct password is cached after its first check.
        self._bcrypt_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"WebConfig(path={self._path!r}, tls={self._tls_enabled}, "
            f"basic_auth_users={len(self._users)}, headers={sorted(self._headers)})"
        )

    @property
    def headers(self) -> Mapping[str, str]:
        """Extra response headers from ``http_server_config.headers``."""
        return self._headers

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server-side TLS context, or None when the file configures no TLS.

        Like the Go exporters, it picks up a renewed certificate and key from their files at
        the next handshake after they change; if the new pair cannot be loaded, the previous
        one keeps serving and a warning is logged.
        """
        if self._certificates is None:
            return None
        return self._certificates.context

    def authenticate(self, authorization_header: str | None) -> bool:
        """Whether a request with this ``Authorization`` header may be served.

        True when no basic auth users are configured.
        """
        if not self._users:
            return True
        credentials = _parse_basic_credentials(authorization_header)
        if credentials is None:
            return False
        user, password = credentials
        cache_key = hmac.new(
            self._cache_key, len(user).to_bytes(8, "big") + user + password, hashlib.sha256
        ).digest()
        with self._cache_lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return True
        hashed: bytes | None = None
        for name, candidate in self._users:
            # Every configured name is compared, in constant time, whatever matches.
            if hmac.compare_digest(name, user):
                hashed = candidate
        with self._bcrypt_lock:
            matches = _bcrypt_matches(password, self._decoy_hash if hashed is None else hashed)
        if hashed is None or not matches:
            return False
        with self._cache_lock:
            self._cache[cache_key] = None
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return True


class TLSThreadingHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that does each TLS handshake in the connection's own thread.

    The accepting thread never waits on a client: a client that connects and never completes
    its handshake occupies only its own thread, and only for ``handshake_timeout`` seconds in
    all. With ``ssl_context`` None the server speaks plain HTTP. Both attributes are read for
    every new connection, so a reload may replace them.
    """

    def __init__(
        self,
        server_address: tuple[str, int] | tuple[str, int, int, int],
        request_handler_class: Callable[[Any, Any, Any], BaseHTTPRequestHandler],
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        bind_and_activate: bool = True,
    ) -> None:
        if handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be positive")
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        super().__init__(server_address, request_handler_class, bind_and_activate)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        context = self.ssl_context
        if context is None:
            super().process_request_thread(request, client_address)
            return
        try:
            connection = _server_handshake(request, context, self.handshake_timeout)
        except (OSError, ValueError) as err:
            log.debug(
                "TLS handshake failed", extra={"client": _host(client_address), "error": str(err)}
            )
            self.shutdown_request(request)
            return
        super().process_request_thread(connection, client_address)


def _server_handshake(
    sock: socket.socket, context: ssl.SSLContext, timeout: float
) -> ssl.SSLSocket:
    """Wrap an accepted socket and complete the handshake within ``timeout`` seconds in all."""
    previous_timeout = sock.gettimeout()
    conn = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    try:
        conn.setblocking(False)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            while True:
                try:
                    conn.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    events = selectors.EVENT_READ
                except ssl.SSLWantWriteError:
                    events = selectors.EVENT_WRITE
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no TLS handshake within {timeout:g}s")
                selector.register(conn, events)
                ready = selector.select(remaining)
                selector.unregister(conn)
                if not ready:
                    raise TimeoutError(f"no TLS handshake within {timeout:g}s")
        conn.settimeout(previous_timeout)
    except ssl.SSLError as err:
        if err.reason == "HTTP_REQUEST":
            _answer_plain_http(conn)
        conn.close()
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _answer_plain_http(conn: ssl.SSLSocket) -> None:
    """Tell a client that spoke plain HTTP to the TLS port what went wrong, as Go servers do."""
    body = b"Client sent an HTTP request to an HTTPS server.\n"
    head = (
        b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with socket.socket(fileno=conn.detach()) as raw:
        try:
            raw.settimeout(1.0)
            raw.sendall(head + body)
        except OSError:
            pass


def _host(client_address: Any) -> str:
    if isinstance(client_address, tuple) and client_address:
        return str(client_address[0])
    return str(client_address)


# --- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TLSSettings:
    config_path: str
    cert_file: str
    key_file: str
    client_ca_file: str
    client_auth_type: str
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    openssl_ciphers: str | None
    prefer_server_cipher_suites: bool


def _build_context(tls: _TLSSettings) -> ssl.SSLContext:
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
    # The server speaks HTTP/1.1 only; saying so lets HTTP/2-capable clients settle at once.
    context.set_alpn_protocols(["http/1.1"])

    pem: dict[str, str] = {}
    for key, file in (("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        try:
            with open(file, encoding="utf-8", errors="replace") as f:
                pem[key] = f.read()
        except OSError as err:
            raise WebConfigError(f"{where}.{key}: cannot read {file!r}: {err.strerror}") from None
    if "-----BEGIN CERTIFICATE-----" not in pem["cert_file"]:
        raise WebConfigError(
            f"{where}.cert_file: expected a PEM certificate, found none in {tls.cert_file!r}"
        )
    if not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", pem["key_file"]):
        raise WebConfigError(
            f"{where}.key_file: expected a PEM private key, found none in {tls.key_file!r}"
        )
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem["key_file"] or (
        "Proc-Type: 4,ENCRYPTED" in pem["key_file"]
    ):
        raise WebConfigError(
            f"{where}.key_file: expected an unencrypted private key, {tls.key_file!r} is "
            "protected by a passphrase"
        )
    try:
        # Should a passphrase still be asked for, it is refused rather than read from a terminal.
        context.load_cert_chain(tls.cert_file, tls.key_file, password=lambda: b"")
    except (ssl.SSLError, OSError) as err:
        if isinstance(err, ssl.SSLError) and err.reason == "KEY_VALUES_MISMATCH":
            raise WebConfigError(
                f"{where}.key_file: expected the private key of the certificate in "
                f"{tls.cert_file!r}, {tls.key_file!r} holds another key"
            ) from None
        raise WebConfigError(
            f"{where}.cert_file: expected a PEM certificate {tls.cert_file!r} usable with the "
            f"PEM private key {tls.key_file!r}: {_ssl_reason(err)}"
        ) from None

    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file:
        try:
            with open(tls.client_ca_file, encoding="utf-8", errors="replace") as f:
                ca_pem = f.read()
        except OSError as err:
            raise WebConfigError(
                f"{where}.client_ca_file: cannot read {tls.client_ca_file!r}: {err.strerror}"
            ) from None
        loaded = 0
        for block in _PEM_CERTIFICATE.findall(ca_pem):
            try:
                context.load_verify_locations(cadata=block)
                loaded += 1
            except ssl.SSLError:
                continue
        if loaded == 0 and context.verify_mode != ssl.CERT_NONE:
            log.warning(
                "the client CA file holds no usable PEM certificate; "
                "every client certificate will be refused",
                extra={
                    "file": tls.config_path,
                    "key": "tls_server_config.client_ca_file",
                    "path": tls.client_ca_file,
                },
            )
    elif context.verify_mode != ssl.CERT_NONE:
        # As in Go: without client_ca_file, client certificates are checked against the
        # system's trusted CAs.
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return context


def _ssl_reason(err: Exception) -> str:
    if isinstance(err, ssl.SSLError):
        return str(err.reason or "invalid PEM data")
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)


class _CertificateReloader:
    """Serves the current certificate, reloading it when its files change."""

    def __init__(self, tls: _TLSSettings) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._files = _files_signature(tls)
        self._current = _build_context(tls)
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
                    self._current = _build_context(self._tls)
                    log.info("TLS certificate reloaded", extra={"path": self._tls.cert_file})
                except WebConfigError as err:
                    log.warning(
                        "TLS certificate reload failed; the previous one keeps serving",
                        extra={"error": str(err)},
                    )
            return self._current


def _files_signature(tls: _TLSSettings) -> tuple[tuple[int, int, int], ...]:
    signature = []
    for file in (tls.cert_file, tls.key_file):
        try:
            st = os.stat(file)
            signature.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            signature.append((-1, -1, -1))
    return tuple(signature)


# --- basic auth --------------------------------------------------------------------------


def _parse_basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user, password


def _bcrypt_matches(password: bytes, hashed: bytes) -> bool:
    if not _STANDARD_BCRYPT.fullmatch(hashed):
        return False  # a hash Go accepts but whose meaning is not standard
    try:
        return bcrypt.checkpw(password[:_BCRYPT_MAX_PASSWORD_BYTES], hashed)
    except ValueError:  # bcrypt refuses some salts the pattern above lets through
        return False


def _go_bcrypt_problem(hashed: bytes) -> str | None:
    """Why Go's bcrypt (which promtool uses) would refuse this hash, or None if it accepts it."""
    if len(hashed) < 59:
        return "it is too short to be a bcrypt hash"
    if hashed[0:1] != b"$":
        return "a bcrypt hash starts with '$'"
    if hashed[1:2] > b"2":
        return "its bcrypt version is newer than 2"
    start = 3 if hashed[2:3] == b"$" else 4
    cost_text = hashed[start : start + 2]
    if not re.fullmatch(rb"[+-]?[0-9]+", cost_text):
        return "its cost is not a number"
    cost = int(cost_text)
    if not 4 <= cost <= 31:
        return f"its cost {cost} is outside 4..31"
    return None


# --- parsing -----------------------------------------------------------------------------


class _Parser:
    """Walks the YAML node tree with the rules of the Go exporters' strict YAML decoding."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dir = os.path.dirname(path)

    def error(self, node: yaml.Node | None, key: str, detail: str) -> WebConfigError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return WebConfigError(f"{self.path}{line}: {key}: {detail}")

    def parse(self, text: str) -> WebConfig:
        root = self.compose(text)
        top = self.fields(root, "", _TOP_KEYS)
        tls = self.tls(top.get("tls_server_config"))
        headers = self.http(top.get("http_server_config"))
        users = self.users(top.get("basic_auth_users"))
        return WebConfig(self.path, tls, users, headers)

    def compose(self, text: str) -> yaml.Node | None:
        loader = yaml.SafeLoader(text)
        try:
            # Like Go's decoder, only the first document counts.
            return loader.get_node() if loader.check_node() else None
        except yaml.MarkedYAMLError as err:
            # The problem only: PyYAML's snippet of the line could show a password hash.
            mark = err.problem_mark or err.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            raise WebConfigError(
                f"{self.path}{line}: expected valid YAML: {err.problem or err.context}"
            ) from None
        except yaml.YAMLError:
            raise WebConfigError(f"{self.path}: expected valid YAML") from None
        finally:
            loader.dispose()

    # Generic node readers; None and YAML null mean "not set".

    def fields(
        self, node: yaml.Node | None, key: str, allowed: tuple[str, ...]
    ) -> dict[str, yaml.Node]:
        found: dict[str, yaml.Node] = {}
        for name, name_node, value in self.mapping(node, key or "the top level"):
            full = f"{key}.{_show(name)}" if key else _show(name)
            if name not in allowed:
                raise self.error(
                    name_node,
                    full,
                    f"unknown key; expected one of {', '.join(allowed)}",
                )
            if name in found:
                raise self.error(name_node, full, "set twice")
            found[name] = value
        return found

    def mapping(self, node: yaml.Node | None, key: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if node is None or _is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, f"expected a mapping, got {_kind(node)}")
        try:
            _flatten_merge_keys(node)
        except yaml.MarkedYAMLError as err:
            raise self.error(node, key, f"expected a valid merge (<<): {err.problem}") from None
        entries: list[tuple[str, yaml.Node, yaml.Node]] = []
        for name_node, value in node.value:
            if not isinstance(name_node, yaml.ScalarNode):
                raise self.error(name_node, key, f"expected text keys, got {_kind(name_node)}")
            entries.append((_scalar_text(name_node), name_node, value))
        return entries

    def string(self, node: yaml.Node | None, key: str) -> str:
        if node is None or _is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, f"expected a string, got {_kind(node)}")
        return _scalar_text(node)

    def boolean(self, node: yaml.Node | None, key: str, default: bool) -> bool:
        if node is None:
            return default
        if _is_null(node):
            return False
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:bool":
                return bool(node.value.lower() in ("yes", "true", "on"))
            # YAML 1.1 booleans that Go's decoder knows and PyYAML does not.
            if node.tag == "tag:yaml.org,2002:str" and node.style is None:
                if node.value in ("y", "Y"):
                    return True
                if node.value in ("n", "N"):
                    return False
        raise self.error(node, key, f"expected true or false, got {_kind(node)}")

    def string_list(self, node: yaml.Node | None, key: str) -> list[tuple[str, yaml.Node]]:
        if node is None or _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, f"expected a list, got {_kind(node)}")
        return [(self.string(item, key), item) for item in node.value if not _is_null(item)]

    def choice(
        self, node: yaml.Node | None, key: str, choices: Mapping[str, Any], shown: tuple[str, ...]
    ) -> str | None:
        if node is None or _is_null(node):
            return None
        value = self.string(node, key)
        if value not in choices:
            raise self.error(node, key, f"expected one of {', '.join(shown)}, got {value!r}")
        return value

    def file(self, node: yaml.Node | None, key: str) -> str:
        value = self.string(node, key)
        if not value or os.path.isabs(value):
            return value
        return os.path.join(self.dir, value)

    # The three sections.

    def tls(self, node: yaml.Node | None) -> _TLSSettings | None:
        section = "tls_server_config"
        f = self.fields(node, section, _TLS_KEYS)

        def key(name: str) -> str:
            return f"{section}.{name}"

        cert_file = self.file(f.get("cert_file"), key("cert_file"))
        key_file = self.file(f.get("key_file"), key("key_file"))
        client_ca_file = self.file(f.get("client_ca_file"), key("client_ca_file"))
        client_auth_type = (
            self.choice(
                f.get("client_auth_type"),
                key("client_auth_type"),
                _CLIENT_AUTH,
                _CLIENT_AUTH_SHOWN,
            )
            or ""
        )
        versions = tuple(_TLS_VERSIONS)
        min_version = self.choice(f.get("min_version"), key("min_version"), _TLS_VERSIONS, versions)
        max_version = self.choice(f.get("max_version"), key("max_version"), _TLS_VERSIONS, versions)
        ciphers = []
        for name, item in self.string_list(f.get("cipher_suites"), key("cipher_suites")):
            if name not in _CIPHER_SUITES:
                raise self.error(
                    item,
                    key("cipher_suites"),
                    f"expected cipher suite names as Go spells them, such as "
                    f"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, got {name!r}",
                )
            openssl_name = _CIPHER_SUITES[name]
            if openssl_name is not None:
                ciphers.append(openssl_name)
        for name, item in self.string_list(f.get("curve_preferences"), key("curve_preferences")):
            if name not in _CURVES:
                raise self.error(
                    item,
                    key("curve_preferences"),
                    f"expected one of {', '.join(_CURVES)}, got {name!r}",
                )
        prefer_server = self.boolean(
            f.get("prefer_server_cipher_suites"), key("prefer_server_cipher_suites"), True
        )

        if not (cert_file or key_file or client_ca_file or client_auth_type):
            return None  # no TLS, as in Go, whatever versions or suites are given
        if not cert_file:
            raise self.error(node, key("cert_file"), "missing; TLS needs a certificate file")
        if not key_file:
            raise self.error(node, key("key_file"), "missing; TLS needs a private key file")
        if client_ca_file and client_auth_type in ("", "NoClientCert"):
            raise self.error(
                f.get("client_ca_file"),
                key("client_auth_type"),
                "expected a client certificate policy (such as RequireAndVerifyClientCert) "
                "since client_ca_file is set",
            )
        if client_auth_type in _UNVERIFIABLE_CLIENT_AUTH:
            log.warning(
                "client certificates will be verified, since Python's ssl module cannot "
                "accept them unverified as Go's %s does",
                client_auth_type,
                extra={
                    "file": self.path,
                    "key": key("client_auth_type"),
                    "verified_against": client_ca_file or "the system's trusted CAs",
                },
            )
        tls = _TLSSettings(
            config_path=self.path,
            cert_file=cert_file,
            key_file=key_file,
            client_ca_file=client_ca_file,
            client_auth_type=client_auth_type,
            min_version=_TLS_VERSIONS[min_version or "TLS12"],
            max_version=_TLS_VERSIONS[max_version or "TLS13"],
            openssl_ciphers=":".join(ciphers) if ciphers else None,
            prefer_server_cipher_suites=prefer_server,
        )
        if tls.min_version > tls.max_version:
            log.warning(
                "min_version is above max_version: every TLS handshake will fail",
                extra={"file": self.path, "key": key("min_version")},
            )
        return tls

    def http(self, node: yaml.Node | None) -> dict[str, str]:
        section = "http_server_config"
        f = self.fields(node, section, _HTTP_KEYS)
        self.boolean(f.get("http2"), f"{section}.http2", True)  # checked; HTTP/1.1 is served
        headers: dict[str, str] = {}
        for name, name_node, value_node in self.mapping(f.get("headers"), f"{section}.headers"):
            key = f"{section}.headers.{_show(name)}"
            if name not in _ALLOWED_HEADERS:
                raise self.error(
                    name_node,
                    key,
                    f"this header cannot be configured; expected one of "
                    f"{', '.join(_ALLOWED_HEADERS)}",
                )
            if name in headers:
                raise self.error(name_node, key, "set twice")
            value = self.string(value_node, key)
            allowed = _ALLOWED_HEADERS[name]
            if allowed is not None and value not in allowed:
                raise self.error(
                    value_node, key, f"expected one of {', '.join(allowed)}, got {value!r}"
                )
            # Line breaks would end the header early; Go's server sends them as spaces.
            headers[name] = value.replace("\r", " ").replace("\n", " ")
        return headers

    def users(self, node: yaml.Node | None) -> dict[bytes, bytes]:
        section = "basic_auth_users"
        users: dict[bytes, bytes] = {}
        for name, name_node, value_node in self.mapping(node, section):
            key = f"{section}.{_show(name)}"
            user = name.encode("utf-8")
            if user in users:
                raise self.error(name_node, key, "user set twice")
            # Never show the value: it may be a password written where the hash belongs.
            if not isinstance(value_node, yaml.ScalarNode):
                raise self.error(
                    value_node, key, f"expected a bcrypt hash, got {_kind(value_node)}"
                )
            hashed = self.string(value_node, key).encode("utf-8")
            problem = _go_bcrypt_problem(hashed)
            if problem is not None:
                raise self.error(
                    value_node,
                    key,
                    f"expected a bcrypt hash such as htpasswd -nB makes ($2y$, cost, salt "
                    f"and hash, 60 characters), but {problem}",
                )
            if not _STANDARD_BCRYPT.fullmatch(hashed):
                log.warning(
                    "the hash is not a standard bcrypt hash ($2a$, $2b$ or $2y$); "
                    "this user cannot log in",
                    extra={"file": self.path, "key": key},
                )
            users[user] = hashed
        return users


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _scalar_text(node: yaml.ScalarNode) -> str:
    """A scalar as a Go string field receives it: its text as written, null as empty."""
    if node.tag == "tag:yaml.org,2002:null":
        return ""
    if node.tag == "tag:yaml.org,2002:binary":
        try:
            return base64.b64decode(node.value).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return str(node.value)
    return str(node.value)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kinds = {
        "tag:yaml.org,2002:str": "a string",
        "tag:yaml.org,2002:int": "a number",
        "tag:yaml.org,2002:float": "a number",
        "tag:yaml.org,2002:bool": "a boolean",
        "tag:yaml.org,2002:null": "nothing",
    }
    return kinds.get(node.tag, "a scalar")


def _show(name: str) -> str:
    """A key as it may appear in a message: plain names only, so no secret is ever echoed."""
    return name if _SHOWABLE_KEY.fullmatch(name) else "<key not shown>"


def _flatten_merge_keys(node: yaml.MappingNode) -> None:
    """Apply YAML merge keys (``<<``), which Go's decoder supports, in place."""
    if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
        yaml.SafeLoader("").flatten_mapping(node)
