"""Command line: parses flags and wires config, collector and server together."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Sequence

from . import __version__, logs
from .collect import Exporter, default_process_collectors
from .config import Config, ConfigError, load_config, parse_config, parse_duration
from .demo import DEMO_TOKEN, DemoApi, DemoServer, demo_config_yaml
from .exposition import write_text
from .reloader import Reloader, WebReload
from .server import ExporterServer, ServerOptions
from .webconfig import WebConfig, WebConfigError, load_web_config

log = logging.getLogger("exporter")

DEFAULT_PORT = 19417


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 500ms, 10s or 1m, got {text!r}"
        ) from None


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT such as :{DEFAULT_PORT}, got {text!r}"
        )
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convocore-crawler-exporter",
        description="Prometheus exporter for Convocore web-crawler jobs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default="config.yaml",
        help="path of the YAML config file",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file, print OK or the error, and exit",
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
        default=("", DEFAULT_PORT),
        metavar="HOST:PORT",
        help="address to serve on",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config",
        default=None,
        help="exporter-toolkit web config (TLS, basic auth)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="do one scrape, print it in the text format 0.0.4, and exit",
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
        type=_duration,
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
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=["logfmt", "json"],
        help="log line format",
    )
    parser.add_argument("--version", action="version", version=__version__)
    return parser


def _load(args: argparse.Namespace, demo_url: str | None) -> Config:
    if demo_url is not None:
        return parse_config(
            demo_config_yaml(demo_url), "<demo>", {"CONVOCORE_DEMO_TOKEN": DEMO_TOKEN}
        )
    return load_config(args.config_file)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    if args.total_shards < 1 or not 0 <= args.shard < args.total_shards:
        print("--shard must be from 0 to --total-shards - 1", file=sys.stderr)
        return 2

    if args.config_check:
        try:
            config = load_config(args.config_file)
            if args.web_config:
                load_web_config(args.web_config)
        except (ConfigError, WebConfigError) as exc:
            print(exc, file=sys.stderr)
            return 1
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print("OK")
        return 0

    web: WebConfig | None = None
    if args.web_config:
        try:
            web = load_web_config(args.web_config)
        except WebConfigError as exc:
            log.error("cannot load the web config", extra={"error": str(exc)})
            print(exc, file=sys.stderr)
            return 1

    demo: DemoServer | None = None
    if args.demo:
        demo = DemoServer(DemoApi())
        demo.start()
        log.info("demo API started", extra={"url": demo.base_url})
    try:
        config = _load(args, demo.base_url if demo else None)
    except ConfigError as exc:
        log.error("cannot load the config", extra={"error": str(exc)})
        print(exc, file=sys.stderr)
        return 1
    for warning in config.warnings:
        log.warning(warning)

    exporter = Exporter(
        config,
        shard=args.shard,
        total_shards=args.total_shards,
        process_collectors=default_process_collectors(),
    )
    if args.once:
        deadline = time.monotonic() + max(0.1, args.default_timeout - args.timeout_offset)
        sys.stdout.write(write_text(exporter.collect(deadline)).decode())
        exporter.close()
        return 0

    def apply_web(new: WebConfig, new_context: ssl.SSLContext | None) -> None:
        server.authenticate = new.authenticate
        server.extra_headers = dict(new.headers)
        if new_context is not None:
            server.ssl_context = new_context

    context = web.ssl_context() if web is not None else None
    reloader = Reloader(
        exporter,
        None if demo is not None else args.config_file,
        web=WebReload(args.web_config, apply_web, context is not None) if web is not None else None,
    )

    try:
        server = ExporterServer(
            args.listen,
            exporter,
            ServerOptions(args.default_timeout, args.timeout_offset, reloader.reload),
            authenticate=web.authenticate if web is not None else None,
            extra_headers=dict(web.headers) if web is not None else None,
            ssl_context=context,
        )
    except OSError as exc:
        log.error("cannot listen", extra={"address": args.listen, "error": exc.strerror})
        return 1

    def stop(signum: int, _frame: object) -> None:
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(
            signal.SIGHUP,
            lambda *_: threading.Thread(target=reloader.reload, args=("SIGHUP",)).start(),
        )
    reloader.watch(args.auto_reload_interval)

    log.info("listening", extra={"address": server.url, "version": __version__, "pid": os.getpid()})
    try:
        server.serve_forever()
    finally:
        reloader.close()
        server.server_close()
        exporter.close()
        if demo is not None:
            demo.shutdown()
    return 0
