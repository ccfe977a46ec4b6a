"""Reading a ``--web.config.file``: the YAML format of the Prometheus exporter-toolkit that the
Go exporters take.

A file that ``promtool check web-config`` accepts loads here, and the same mistakes are refused,
each with an error naming the file, the line, the key and what was expected. Relative paths are
resolved against the directory of the web config file. Example::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
    basic_auth_users:
      prometheus: $2b$12$...   # a bcrypt hash, never a password

Where Python's ``ssl`` module cannot express a Go setting, the closest stricter behaviour is used
(see ``docs/web-config.md``): ``RequireAnyClientCert`` verifies the client certificate. What
cannot be applied at all is logged as a warning at load: ``curve_preferences`` of more than one
curve (a single curve is enforced; with several OpenSSL's default groups are kept) and
``http2: true`` (the server speaks HTTP/1.1).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

from ..durations import parse_duration
from .auth import STANDARD_BCRYPT, BasicAuth, go_bcrypt_problem
from .errors import WebConfigError
from .gonames import ALLOWED_HEADERS
from .ratelimit import RateLimit
from .tls import CertificateReloader, TLSSettings, client_sans
from .tlssection import read_tls_section
from .yamlnodes import NodeReader, kind, show

__all__ = ["WebConfig", "WebConfigError", "load_web_config"]

log = logging.getLogger(__name__)

_TOP_KEYS = ("tls_server_config", "http_server_config", "rate_limit", "basic_auth_users")
_HTTP_KEYS = ("http2", "headers")
_RATE_LIMIT_KEYS = ("interval", "burst")


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
    """A loaded web config: TLS, client certificate names, basic auth users, the rate limit
    and the extra headers.

    Immutable once loaded apart from its private caches, and safe to share between threads.
    """

    def __init__(
        self,
        path: str,
        tls: TLSSettings | None,
        users: Mapping[bytes, bytes],
        headers: Mapping[str, str],
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._path = path
        self._auth = BasicAuth(users)
        self._headers = MappingProxyType(dict(headers))
        self._tls_enabled = tls is not None
        self._allowed_sans = frozenset(tls.client_allowed_sans) if tls is not None else frozenset()
        self._certificates = CertificateReloader(tls) if tls is not None else None
        self.rate_limit = rate_limit
        """The request rate limit, or None when there is none."""

    def __repr__(self) -> str:
        return (
            f"WebConfig(path={self._path!r}, tls={self._tls_enabled}, "
            f"basic_auth_users={len(self._auth)}, headers={sorted(self._headers)})"
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
        return self._auth.authenticate(authorization_header)

    def client_allowed(self, connection: Any) -> bool:
        """Whether the client certificate of this connection carries one of
        ``client_allowed_sans``; True when that list is not set."""
        if not self._allowed_sans:
            return True
        getpeercert = getattr(connection, "getpeercert", None)
        if getpeercert is None:
            return False
        try:
            names = client_sans(getpeercert())
        except (OSError, ValueError):
            return False
        return any(name in self._allowed_sans for name in names)


class _Parser(NodeReader):
    def parse(self, text: str) -> WebConfig:
        root = self.compose(text)
        top = self.fields(root, "", _TOP_KEYS)
        tls = read_tls_section(self, top.get("tls_server_config"))
        headers = self.http(top.get("http_server_config"))
        rate_limit = self.rate_limit(top.get("rate_limit"))
        users = self.users(top.get("basic_auth_users"))
        return WebConfig(self.path, tls, users, headers, rate_limit)

    def http(self, node: yaml.Node | None) -> dict[str, str]:
        section = "http_server_config"
        f = self.fields(node, section, _HTTP_KEYS)
        http2_node = f.get("http2")
        if self.boolean(http2_node, f"{section}.http2", False):
            # Go's default is true, so only a file that asks for it says so.
            log.warning(
                "http2 is not served: the server speaks HTTP/1.1 only, which every Prometheus "
                "speaks",
                extra={"file": self.path, "key": f"{section}.http2"},
            )
        headers: dict[str, str] = {}
        for name, name_node, value_node in self.mapping(f.get("headers"), f"{section}.headers"):
            key = f"{section}.headers.{show(name)}"
            if name not in ALLOWED_HEADERS:
                raise self.error(
                    name_node,
                    key,
                    f"this header cannot be configured; expected one of "
                    f"{', '.join(ALLOWED_HEADERS)}",
                )
            if name in headers:
                raise self.error(name_node, key, "set twice")
            value = self.string(value_node, key)
            allowed = ALLOWED_HEADERS[name]
            if allowed is not None and value not in allowed:
                raise self.error(
                    value_node, key, f"expected one of {', '.join(allowed)}, got {value!r}"
                )
            # Line breaks would end the header early; Go's server sends them as spaces.
            headers[name] = value.replace("\r", " ").replace("\n", " ")
        return headers

    def rate_limit(self, node: yaml.Node | None) -> RateLimit | None:
        section = "rate_limit"
        f = self.fields(node, section, _RATE_LIMIT_KEYS)
        interval_node = f.get("interval")
        interval = 0.0
        text = self.string(interval_node, f"{section}.interval")
        if text:
            try:
                interval = parse_duration(text)
            except ValueError:
                raise self.error(
                    interval_node,
                    f"{section}.interval",
                    f"expected a duration such as 100ms, 1s or 1m (0 for no limit), got {text!r}",
                ) from None
        burst = self.integer(f.get("burst"), f"{section}.burst")
        if interval <= 0:
            return None  # as in Go: no interval, no limit, whatever the burst
        if burst < 1:
            log.warning(
                "rate_limit.burst is below 1: every request will be refused (429)",
                extra={"file": self.path, "key": f"{section}.burst", "burst": burst},
            )
        return RateLimit(interval, burst)

    def users(self, node: yaml.Node | None) -> dict[bytes, bytes]:
        section = "basic_auth_users"
        users: dict[bytes, bytes] = {}
        for name, name_node, value_node in self.mapping(node, section):
            key = f"{section}.{show(name)}"
            user = name.encode("utf-8")
            if user in users:
                raise self.error(name_node, key, "user set twice")
            # Never show the value: it may be a password written where the hash belongs.
            if not isinstance(value_node, yaml.ScalarNode):
                raise self.error(value_node, key, f"expected a bcrypt hash, got {kind(value_node)}")
            hashed = self.string(value_node, key).encode("utf-8")
            problem = go_bcrypt_problem(hashed)
            if problem is not None:
                raise self.error(
                    value_node,
                    key,
                    f"expected a bcrypt hash such as htpasswd -nB makes ($2y$, cost, salt "
                    f"and hash, 60 characters), but {problem}",
                )
            if not STANDARD_BCRYPT.fullmatch(hashed):
                log.warning(
                    "the hash is not a standard bcrypt hash ($2a$, $2b$ or $2y$); "
                    "this user cannot log in",
                    extra={"file": self.path, "key": key},
                )
            users[user] = hashed
        return users
