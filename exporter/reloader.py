"""Re-reading the config: on demand (SIGHUP, ``POST /-/reload``) and, optionally, whenever
the config file or one of its token files changes on disk.

A reload validates the whole file first and only then swaps it in
(:meth:`Exporter.set_config`); a bad file is refused, logged, and the last good config keeps
serving. The reloader owns the outcome: ``convocore_crawler_config_last_reload_successful``
and ``..._success_timestamp_seconds``, registered with the exporter's own metrics.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

from .collect import Exporter
from .config import MAX_CONFIG_FILE_BYTES, MAX_TOKEN_FILE_CHARS, Config, ConfigError, load_config
from .exposition import metrics
from .exposition.writer import gauge
from .web.config import WebConfigError
from .web.settings import WebHolder

log = logging.getLogger(__name__)

# The most the loader reads of any watched file, plus one: a change within it is seen, and a
# wrong path (a device, a huge file) costs no more than the loader itself would read.
_MAX_READ = max(MAX_CONFIG_FILE_BYTES, 4 * MAX_TOKEN_FILE_CHARS) + 1

Fingerprint = dict[str, str | None]


def _digest(path: str) -> str | None:
    """A hash of the file's content, or None when it cannot be read.

    The content decides, not mtime and size: a token rotated to one of the same length
    within the file system's mtime granularity would otherwise go unnoticed, and the files
    are small enough to read on every check.
    """
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read(_MAX_READ)).hexdigest()
    except OSError:
        return None


class Reloader:
    """Reloads ``path`` into ``exporter``, and the web config file of ``web`` into it.

    ``path`` None (the demo) leaves the exporter's config as it is.
    """

    def __init__(
        self,
        exporter: Exporter,
        path: str | None,
        load: Callable[[str], Config] = load_config,
        web: WebHolder | None = None,
        swapped: Callable[[], None] | None = None,
    ) -> None:
        """``swapped`` is called after a new config is swapped in (the first read of the jobs
        it brings)."""
        self.exporter = exporter
        self._swapped = swapped
        self.path = path
        self.web = web if web is not None and web.path is not None else None
        """The web config file's side, when there is one."""
        self._load = load
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: Fingerprint = self._fingerprint(exporter.config)
        registry = exporter.own.registry
        self._successful = gauge(metrics.RELOAD_SUCCESS, registry)
        self._success_time = gauge(metrics.RELOAD_TIME, registry)
        self.successful = True
        """Whether the last reload succeeded (the start-up load counts as one)."""
        self._succeeded()  # the config in force was loaded at start

    def _succeeded(self) -> None:
        self.successful = True
        self._successful.set(1)
        self._success_time.set(time.time())

    def _fingerprint(self, config: Config, files: list[str] | None = None) -> Fingerprint:
        if files is None:
            files = list(config.files) if self.path is not None else []
            if self.web is not None and self.web.path is not None:
                files.append(self.web.path)
        return {f: _digest(f) for f in files}

    def reload(self, trigger: str = "request") -> str | None:
        """Re-read the files; returns None on success, else the reason (for the user).

        Everything is validated before anything is swapped in.
        """
        if self.path is None and self.web is None:
            return None
        with self._lock:
            # Taken before reading, so a change made while loading is seen by the next check.
            before = self._fingerprint(self.exporter.config, list(self._seen) or None)
            try:
                web = self.web.read() if self.web is not None else None
                config = self._load(self.path) if self.path is not None else None
            except (ConfigError, WebConfigError) as exc:
                self._seen = before  # not retried until something changes again
                self.successful = False
                self._successful.set(0)
                log.error(
                    "config reload failed; the last good config keeps serving",
                    extra={"trigger": trigger, "error": str(exc)},
                )
                return str(exc)
            if config is not None:
                self.exporter.set_config(config)
            # (when only the web config changed, the exporter keeps its config and caches)
            self._succeeded()
            if web is not None and self.web is not None:
                self.web.apply(web)
            after = self._fingerprint(self.exporter.config)
            self._seen = {path: before.get(path, digest) for path, digest in after.items()}
        if config is not None:
            for warning in config.warnings:
                log.warning(warning)
        log.info("config reloaded", extra={"file": self.path or "", "trigger": trigger})
        if config is not None and self._swapped is not None:
            self._swapped()
        return None

    def changed(self) -> bool:
        """Whether the config file or a token file differs from what was last loaded."""
        with self._lock:
            seen = dict(self._seen)
        return any(_digest(path) != digest for path, digest in seen.items())

    def check(self) -> None:
        if self.changed():
            self.reload(trigger="file change")

    def watch(self, interval: float) -> None:
        """Check for changes every ``interval`` seconds in a background thread."""
        if self._thread is not None or interval <= 0 or not self._seen:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.check()
                except Exception:  # keep watching whatever happened
                    log.exception("config file check failed")

        self._thread = threading.Thread(target=run, name="config-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
