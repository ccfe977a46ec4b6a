"""The web settings in force: what the ``--web.config.file`` decides for every request, shared
by every listener, and how a reload replaces them.

A reload reads the file first (:meth:`WebHolder.read`, which raises on a bad file) and swaps
the settings in only once everything else reloaded is valid too (:meth:`WebHolder.apply`).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import WebConfig, load_web_config
from .errors import WebConfigError
from .ratelimit import TokenBucket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebSettings:
    """What the web config decides for every request: who may in (basic auth, client
    certificate names, the rate limit), which extra headers go out, and the TLS context for
    new connections. The defaults (no web config) let everyone in over plain HTTP."""

    authenticate: Callable[[str | None], bool] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    client_allowed: Callable[[Any], bool] | None = None
    limiter: TokenBucket | None = None


class WebHolder:
    """The current :class:`WebSettings` and the file they come from (``path`` None: no web
    config). A reload replaces ``current`` whole, so a request sees either the old settings or
    the new ones, never a mix."""

    def __init__(self, config: WebConfig | None = None, path: str | None = None) -> None:
        self.path = path
        self._current = WebSettings() if config is None else _settings(config, None)

    @classmethod
    def load(cls, path: str | None) -> WebHolder:
        """The settings of the web config file at ``path`` (none when ``path`` is None).
        Raises :class:`WebConfigError`."""
        return cls() if path is None else cls(load_web_config(path), path)

    @property
    def current(self) -> WebSettings:
        return self._current

    @property
    def tls(self) -> bool:
        """Whether the listeners speak TLS (which only a restart can change)."""
        return self._current.ssl_context is not None

    def read(self) -> WebConfig | None:
        """The web config file as it is now, validated but not applied (None when there is no
        file). Raises :class:`WebConfigError`, also for a file that would turn TLS on or off."""
        if self.path is None:
            return None
        config = load_web_config(self.path)
        if (config.ssl_context() is not None) != self.tls:
            raise WebConfigError(f"{self.path}: turning TLS on or off needs a restart")
        return config

    def apply(self, config: WebConfig) -> None:
        """Serve with ``config`` from the next request (the next connection, for TLS)."""
        self._current = _settings(config, self._current.limiter)


def _settings(config: WebConfig, limiter: TokenBucket | None) -> WebSettings:
    """The settings ``config`` decides; an unchanged rate limit keeps its bucket (tokens and
    all), a changed one starts a new, full bucket."""
    if config.rate_limit is None:
        limiter = None
    elif limiter is None or limiter.limit != config.rate_limit:
        log.info(
            "rate limit on",
            extra={
                "interval_seconds": config.rate_limit.interval,
                "burst": config.rate_limit.burst,
            },
        )
        limiter = TokenBucket(config.rate_limit)
    return WebSettings(
        config.authenticate,
        dict(config.headers),
        config.ssl_context(),
        config.client_allowed,
        limiter,
    )
