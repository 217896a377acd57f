"""``qatysu serve | token | migrate | plugins``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from core.settings import Settings, SettingsError, load_settings
from core.startup import StartupFailure

log = logging.getLogger("qatysu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qatysu", description="The Qatysu e-participation server."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    _add_common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--redis-url", help="Redis for shared rate limits (default: none)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument(
        "--admission",
        choices=("on", "off"),
        help="off disables rate limiting, queueing and shedding (benchmarks only)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="development mode, with demo data and sample tokens",
    )
    _add_dev(serve)

    token = commands.add_parser(
        "token", help="print a bearer token signed with the server's secret"
    )
    token.add_argument("--config", type=Path, help="TOML settings file")
    token.add_argument(
        "--role", required=True, choices=("citizen", "agency", "moderator", "operator")
    )
    token.add_argument("--sub", required=True, help="the citizen's IIN, or the official's id")
    token.add_argument("--agency", help="agency code (for --role agency)")
    token.add_argument("--name", help="display name")
    token.add_argument("--ttl", type=float, default=3600, help="seconds until it expires")
    _add_dev(token)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    _add_common(migrate)

    plugins = commands.add_parser("plugins", help="list the loaded plugins")
    plugins.add_argument("--config", type=Path, help="TOML settings file")
    return parser


def _add_dev(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dev",
        action="store_true",
        help="development mode: missing secrets come from var/dev-secrets.json",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (default config/default.toml)"
    )
    parser.add_argument(
        "--database-url", help="sqlite:///path or postgresql://... (default SQLite in ./var)"
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    server: dict[str, Any] = {}
    for name in ("host", "port", "workers"):
        server[name] = getattr(args, name, None)
    for flag in ("demo", "dev"):
        if getattr(args, flag, False):
            server[flag] = True
    admission = getattr(args, "admission", None)
    return load_settings(
        config_file=args.config,
        overrides={
            "server": server,
            "database": {"url": getattr(args, "database_url", None)},
            "redis": {"url": getattr(args, "redis_url", None)},
            "admission": {"enabled": None if admission is None else admission == "on"},
        },
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        if args.command == "serve":
            return serve(settings)
        if args.command == "token":
            return print_token(settings, args)
        if args.command == "migrate":
            return asyncio.run(run_migrations(settings))
        return list_plugins(settings)
    except SettingsError as exc:
        print(f"qatysu: {exc}", file=sys.stderr)
        return 2
    except StartupFailure as exc:
        print(f"qatysu: {exc}", file=sys.stderr)
        return 1


def print_token(settings: Settings, args: argparse.Namespace) -> int:
    from core.identity import mint_token, token_keys
    from core.iin import iin_problem

    if args.role == "citizen" and (problem := iin_problem(args.sub)) is not None:
        raise SettingsError(f"--sub: {problem}")
    if args.role == "agency" and not args.agency:
        raise SettingsError("--agency is required with --role agency")
    secret = token_keys(settings).hs256_secret
    print(
        mint_token(
            secret, role=args.role, sub=args.sub, agency=args.agency, name=args.name, ttl=args.ttl
        )
    )
    return 0


async def run_migrations(settings: Settings) -> int:
    from core.plugins import PluginHost
    from core.storage.database import Database, wait_until_reachable
    from core.storage.migrations import migrate

    database = Database(settings.database_url)
    try:
        await wait_until_reachable(database, wait=settings.database.startup_wait)
        applied = await migrate(database, PluginHost(settings).migrations())
    finally:
        await database.dispose()
    for line in applied:
        print(f"applied {line}")
    print("schema up to date" if not applied else f"{len(applied)} migration(s) applied")
    return 0


def list_plugins(settings: Settings) -> int:
    from core.plugins import PluginHost

    for info in PluginHost(settings).plugins():
        version = f" {info.version}" if info.version else ""
        print(f"{info.name}{version}: {', '.join(info.hooks)}")
    return 0


def serve(settings: Settings) -> int:
    from core.secret_keys import resolve_secrets

    # Checked before any worker forks, so a missing secret is one clear message, not N.
    resolve_secrets(settings)
    if settings.server.workers > 1:
        from core.workers import serve_workers

        return serve_workers(settings)
    _install_event_loop(settings)
    return asyncio.run(serve_forever(settings))


def _install_event_loop(settings: Settings) -> None:
    if settings.server.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
            return
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve_forever(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT, then drain: unready, finish in-flight, flush, exit 0."""
    from core.server import start_server

    running = await start_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("draining: readiness off, finishing in-flight requests and queued writes")
    await running.drain()
    log.info("drained; exiting")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
