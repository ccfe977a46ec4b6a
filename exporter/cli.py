"""Command line: parses flags and wires config, collector and server together."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from . import __version__, logs
from .collect import Exporter, WarmUp, default_process_collectors
from .config import (
    Config,
    ConfigError,
    load_config,
    parse_config,
)
from .demo.api import DEMO_TOKEN, DemoApi, DemoServer, demo_config_yaml
from .durations import DurationError, parse_duration
from .exposition.writer import write_text
from .reloader import Reloader
from .version import PROGRAM, build_info
from .web.config import WebConfigError, load_web_config
from .web.limits import Limits, Slots
from .web.server import ExporterServer, ServerOptions, scrape_deadline
from .web.settings import WebHolder

log = logging.getLogger("exporter")

DEFAULT_PORT = 19417
DEFAULT_LISTEN = f":{DEFAULT_PORT}"
DEFAULT_CONFIG = "config.yaml"
LOG_LEVELS = ("debug", "info", "warn", "error")

EXAMPLE_CONFIG = "config.example.yaml"  # beside this module, in the package
NO_CONFIG_HINT = (
    f"write an example with: {PROGRAM} --config.example > {DEFAULT_CONFIG} (then put in your "
    "workspace and job ids and set CONVOCORE_TOKEN), or pass --config.file PATH, or run with "
    "--demo to try the exporter against a simulated Convocore API"
)

EXIT_OK = 0
EXIT_FAILURE = 1  # the config, a file or the runtime failed; or --once found a job down
EXIT_USAGE = 2  # the command line itself is wrong (argparse's own status)
# Each exit status, when it is given and what is printed then: the table of
# docs/configuration.md is generated from this, and tests/test_cli.py runs every case.
EXIT_STATUSES = (
    (
        EXIT_OK,
        "the server stopped on SIGTERM or SIGINT; `--once` with every job up; "
        "`--config.check` of a valid file; `--help`, `--version`, `--config.example`",
        "what was asked for on stdout (the metrics of `--once`, the `OK` of `--config.check`); "
        "log lines on stderr",
    ),
    (
        EXIT_FAILURE,
        "a config failure: the config file (the default `config.yaml` or the `--config.file` "
        "given) or the `--web.config.file` is missing, unreadable or refused; a runtime "
        "failure: a listen address cannot be bound; `--once` with a job down (its metrics are "
        "printed all the same)",
        "one `level=error` log line in the `--log.format`, naming the file, key or address; "
        "for `--config.check`, the error as a plain line on stderr",
    ),
    (
        EXIT_USAGE,
        "a usage error: an unknown flag, a flag value that cannot be read (a duration, an "
        "address, a path, a level, a format), `--shard` outside 0 to `--total-shards` - 1",
        "the usage and the error on stderr, as argparse writes them (the log format is not "
        "known yet)",
    ),
)


def example_config() -> str:
    """The example config file shipped in the package (``--config.example``)."""
    return resources.files(__package__).joinpath(EXAMPLE_CONFIG).read_text(encoding="utf-8")


def _duration(text: str) -> float:
    """A duration flag that may be 0 (an offset, or an interval where 0 means off)."""
    try:
        return parse_duration(text)
    except DurationError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 0, 500ms, 10s or 1m30s, got {text!r}"
        ) from None


def _positive_duration(text: str) -> float:
    """A duration flag for which 0 has no meaning (a timeout)."""
    try:
        seconds = parse_duration(text)
    except DurationError:
        seconds = 0.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a duration above 0 such as 500ms, 10s or 1m30s, got {text!r}"
        )
    return seconds


def _count(text: str) -> int:
    """A whole number flag from 0 (0: no limit)."""
    if not re.fullmatch(r"[0-9]{1,7}", text) or int(text) > 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 1000000, got {text!r}")
    return int(text)


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT such as {DEFAULT_LISTEN}, got {text!r}"
        )
    return host.strip("[]"), int(port)


def _telemetry_path(text: str) -> str:
    if not text.startswith("/") or text == "/" or text in ("/probe", "/sd") or "?" in text:
        raise argparse.ArgumentTypeError(
            f"expected a path such as /metrics (not /, /probe or /sd), got {text!r}"
        )
    return text


def _log_level(text: str) -> str:
    level = text.lower()
    return "warn" if level == "warning" else level


def show_address(address: tuple[str, int]) -> str:
    """``host:port`` as a user writes it (``:19417`` for every interface, ``[::1]:1``)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def shown_default(action: argparse.Action) -> str | None:
    """A flag's default as a user writes it (``10s``, ``:19417``); None when it has none
    worth showing (off switches, optional files)."""
    if action.dest == "listen":
        return DEFAULT_LISTEN
    default = action.default
    if default is None or isinstance(default, bool) or default == argparse.SUPPRESS:
        return None
    return str(default)


class _Formatter(argparse.HelpFormatter):
    """Shows a default only where there is one, as the user would write it, never
    ``(default: None)``; wraps lines at spaces only, so a flag or a header name
    (``X-Prometheus-Scrape-Timeout-Seconds``) is never cut in two."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = " ".join(text.split())
        return textwrap.fill(
            text,
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )

    def _get_help_string(self, action: argparse.Action) -> str:
        notes = []
        if action.choices:
            notes.append("one of " + ", ".join(str(c) for c in action.choices))
        shown = shown_default(action)
        if shown is not None:
            notes.append(f"default: {shown}")
        text = action.help or ""
        return f"{text} ({'; '.join(notes)})" if notes else text


class _PrintAction(argparse.Action):
    """A flag that prints a text on stdout and exits (``--version``, ``--config.example``)."""

    def __init__(
        self,
        option_strings: list[str],
        text: Callable[[], str],
        help: str,
        dest: str = argparse.SUPPRESS,
        **_: Any,
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self._text = text

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        sys.stdout.write(self._text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Prometheus exporter for Convocore web-crawler jobs.",
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help="path of the YAML config file",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file, print OK or the error, and exit",
    )
    parser.add_argument(
        "--config.example",
        action=_PrintAction,
        text=example_config,
        help="print an example config file on stdout and exit",
    )
    parser.add_argument(
        "--config.auto-reload-interval",
        dest="auto_reload_interval",
        type=_duration,
        default="0s",
        metavar="DURATION",
        help="re-check the config file, its token files and the web config file this often "
        "and reload when they change, so a rotated secret is picked up without a restart "
        "(0s: off)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        type=_listen_address,
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="address to serve on; repeat the flag to serve on several",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        type=_telemetry_path,
        default="/metrics",
        metavar="PATH",
        help="path under which to serve the metrics",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config",
        default=None,
        metavar="PATH",
        help="exporter-toolkit web config (TLS, basic auth)",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="lifecycle",
        action="store_true",
        help="allow reloading the config with POST /-/reload (SIGHUP always works)",
    )
    parser.add_argument(
        "--web.read-header-timeout",
        dest="read_header_timeout",
        type=_duration,
        default="10s",
        metavar="DURATION",
        help="close a connection whose request line and headers have not all arrived within "
        "this (408 when part of them came); 0s: no limit",
    )
    parser.add_argument(
        "--web.idle-timeout",
        dest="idle_timeout",
        type=_duration,
        default="1m",
        metavar="DURATION",
        help="close a kept-alive connection that sends no new request for this long, or that "
        "takes none of an answer for this long; 0s: no limit",
    )
    parser.add_argument(
        "--web.max-requests",
        dest="max_requests",
        type=_count,
        default=40,
        metavar="N",
        help="requests served at once at most; one more is answered 503 at once "
        "(/-/healthy and /-/ready never are); 0: no limit",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="do one scrape, print it in the text format 0.0.4, and exit: 0 when every job "
        "is up, 1 when one is down",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start a simulated Convocore API on loopback and export its jobs "
        "(no config or account needed)",
    )
    parser.add_argument(
        "--scrape.default-timeout",
        dest="default_timeout",
        type=_positive_duration,
        default="10s",
        metavar="DURATION",
        help="scrape timeout when Prometheus sends no X-Prometheus-Scrape-Timeout-Seconds header",
    )
    parser.add_argument(
        "--scrape.timeout-offset",
        dest="timeout_offset",
        type=_duration,
        default="500ms",
        metavar="DURATION",
        help="margin subtracted from the scrape timeout",
    )
    parser.add_argument(
        "--shard", type=int, default=0, help="this replica's shard, from 0 to --total-shards - 1"
    )
    parser.add_argument(
        "--total-shards",
        dest="total_shards",
        type=int,
        default=1,
        help="number of replicas splitting the jobs between them",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        type=_log_level,
        default="info",
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="log level (warning is accepted for warn)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=["logfmt", "json"],
        metavar="FORMAT",
        help="log line format",
    )
    parser.add_argument(
        "--version",
        action=_PrintAction,
        text=lambda: build_info().text(),
        help="print the version, revision, build date and Python version, and exit",
    )
    return parser


def _load(args: argparse.Namespace, demo_url: str | None) -> Config:
    if demo_url is not None:
        return parse_config(
            demo_config_yaml(demo_url), "<demo>", {"CONVOCORE_DEMO_TOKEN": DEMO_TOKEN}
        )
    return load_config(args.config_file)


def _missing_default_config(args: argparse.Namespace) -> bool:
    return (
        not args.demo and args.config_file == DEFAULT_CONFIG and not os.path.lexists(DEFAULT_CONFIG)
    )


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config_file)
        if args.web_config:
            load_web_config(args.web_config)
    except (ConfigError, WebConfigError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILURE
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("OK")
    return EXIT_OK


def _once(exporter: Exporter, args: argparse.Namespace) -> int:
    """One scrape to stdout; 1 when a job is down (``convocore_crawler_up`` 0)."""
    result = exporter.collect(scrape_deadline(args.default_timeout, args.timeout_offset))
    sys.stdout.write(write_text(result.families).decode())
    sys.stdout.flush()
    if result.down:
        log.error("a job is down", extra={"down_jobs": len(result.down)})
        return EXIT_FAILURE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the exporter and returns its exit status: ``EXIT_USAGE`` (2) when the command line
    is wrong (argparse's own message, before any log line), ``EXIT_FAILURE`` (1) when the
    config, a file or the runtime fails (one log line in the chosen format), else
    ``EXIT_OK``. ``--config.check`` prints its verdict plainly, as ``promtool check`` does."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.total_shards < 1 or not 0 <= args.shard < args.total_shards:
        parser.error("--shard must be from 0 to --total-shards - 1, and --total-shards at least 1")
    logs.setup("warning" if args.log_level == "warn" else args.log_level, args.log_format)
    if _missing_default_config(args):
        if args.config_check:
            print(
                f"no config file: {DEFAULT_CONFIG} does not exist; {NO_CONFIG_HINT}",
                file=sys.stderr,
            )
        else:
            log.error("no config file", extra={"file": DEFAULT_CONFIG, "hint": NO_CONFIG_HINT})
        return EXIT_FAILURE
    if args.config_check:
        return _check(args)
    listen: list[tuple[str, int]] = args.listen or [_listen_address(DEFAULT_LISTEN)]

    try:
        web = WebHolder.load(args.web_config or None)
    except WebConfigError as exc:
        log.error("web config refused", extra={"error": str(exc)})
        return EXIT_FAILURE

    # The demo API is bound (an ephemeral loopback port, for the config to point at) but
    # serves nothing until every listener of the exporter is bound.
    demo = DemoServer(DemoApi()) if args.demo else None
    try:
        config = _load(args, demo.base_url if demo else None)
    except ConfigError as exc:
        log.error("config refused", extra={"error": str(exc)})
        return EXIT_FAILURE
    for warning in config.warnings:
        log.warning(warning)

    exporter = Exporter(
        config,
        shard=args.shard,
        total_shards=args.total_shards,
        process_collectors=default_process_collectors(),
    )
    if args.once:
        if demo is not None:
            demo.start()
        try:
            return _once(exporter, args)
        finally:
            exporter.close()
            if demo is not None:
                demo.shutdown()
                demo.server_close()
    return _serve(args, listen, exporter, web, demo)


def _serve(
    args: argparse.Namespace,
    listen: list[tuple[str, int]],
    exporter: Exporter,
    web: WebHolder,
    demo: DemoServer | None,
) -> int:
    # Serving only: --once reads once anyway, --config.check reads nothing.
    warm_up = WarmUp(exporter, lambda: scrape_deadline(args.default_timeout, args.timeout_offset))
    reloader = Reloader(
        exporter,
        None if demo is not None else args.config_file,
        web=web,
        swapped=lambda: warm_up.start("reload"),
    )
    nothing_to_reload = demo is not None and web.path is None
    options = ServerOptions(
        args.default_timeout,
        args.timeout_offset,
        None if nothing_to_reload else reloader.reload,
        lifecycle=args.lifecycle,
        telemetry_path=args.telemetry_path,
        demo=demo is not None,
        limits=Limits(args.read_header_timeout, args.idle_timeout, args.max_requests),
    )
    slots = Slots(args.max_requests)  # one cap for every listener

    servers: list[ExporterServer] = []

    def close_all() -> None:
        for server in servers:
            server.server_close()
        exporter.close()
        if demo is not None:
            demo.server_close()

    for address in listen:
        try:
            servers.append(ExporterServer(address, exporter, options, web, slots))
        except OSError as exc:
            log.error(
                "cannot listen",
                extra={"address": show_address(address), "error": exc.strerror or str(exc)},
            )
            close_all()
            return EXIT_FAILURE

    if demo is not None:
        demo.start()
        log.info("demo API started", extra={"url": demo.base_url})

    # Signals wake the main thread through this socket: Python's C-level handler writes the
    # signal number to it (set_wakeup_fd), whichever thread the kernel delivered the signal
    # to. The Python-level handler alone would run only once the main thread executes
    # bytecode again, which it does not while it waits in recv(). Nothing polls.
    wake_read, wake_write = socket.socketpair()
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
    watched = [signal.SIGTERM, signal.SIGINT]
    if hasattr(signal, "SIGHUP"):
        watched.append(signal.SIGHUP)
    for watched_signal in watched:
        signal.signal(watched_signal, lambda *_: None)  # the wakeup byte does the work
    warm_up.start("start-up")
    reloader.watch(args.auto_reload_interval)
    for server in servers:
        server.start(poll_interval=None)
        log.info(
            "listening", extra={"address": server.url, "version": __version__, "pid": os.getpid()}
        )

    try:
        while True:
            signum = wake_read.recv(1)[0]
            if hasattr(signal, "SIGHUP") and signum == signal.SIGHUP:
                if nothing_to_reload:
                    log.info("SIGHUP: running with --demo, there is no config file to re-read")
                else:
                    threading.Thread(target=reloader.reload, args=("SIGHUP",)).start()
                continue
            log.info("shutting down", extra={"signal": signal.Signals(signum).name})
            break
    finally:
        for server in servers:
            server.shutdown()
        reloader.close()
        if demo is not None:
            demo.shutdown()
        close_all()
        signal.set_wakeup_fd(-1)
        wake_read.close()
        wake_write.close()
    return EXIT_OK
