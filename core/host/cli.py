"""``qatysu serve | token | migrate | demo reset | plugins | new-channel``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from core.host.logs import LOG_LEVELS, configure_logging
from core.settings import Settings, SettingsError, load_settings
from core.startup import StartupFailure
from core.version import qatysu_version

log = logging.getLogger("qatysu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qatysu", description="The Qatysu e-participation server."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {qatysu_version()}")
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, help="least severe level logged (default info)"
    )
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="json: one object per line (default text)"
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
    token.add_argument(
        "--sub",
        required=True,
        help="the citizen's national identifier (an IIN), or the official's id",
    )
    token.add_argument("--agency", help="agency code (for --role agency)")
    token.add_argument("--name", help="display name")
    token.add_argument(
        "--ttl",
        type=float,
        help="seconds until it expires: 1 to the role's maximum lifetime "
        "(identity.max_token_lifetime_seconds; default 3600, or that maximum if shorter)",
    )
    _add_dev(token)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    _add_common(migrate)

    demo = commands.add_parser("demo", help="manage the demo's local data")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    reset = demo_commands.add_parser(
        "reset", help="delete the demo database so that the next serve --demo seeds afresh"
    )
    reset.add_argument("--config", type=Path, help="TOML settings file")
    reset.add_argument(
        "--secrets",
        action="store_true",
        help="delete the development secrets too (every token minted from them stops working)",
    )

    plugins = commands.add_parser("plugins", help="list the loaded plugins")
    plugins.add_argument("--config", type=Path, help="TOML settings file")

    scaffold = commands.add_parser(
        "new-channel", help="generate a working channel package, ready to install"
    )
    scaffold.add_argument("name", help="the channel's name: lower-case letters, digits and _")
    scaffold.add_argument(
        "--into", type=Path, default=Path(), help="directory to write qatysu-NAME in (default .)"
    )
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
            "logging": {
                "level": getattr(args, "log_level", None),
                "format": getattr(args, "log_format", None),
            },
        },
    )


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    if args.command == "new-channel":
        return generate_channel(args.name, args.into)
    try:
        settings = settings_from_args(args)
        configure_logging(settings.logging.level, settings.logging.format)
        if args.command == "serve":
            return serve(settings)
        if args.command == "token":
            return print_token(settings, args)
        if args.command == "migrate":
            return asyncio.run(run_migrations(settings))
        if args.command == "demo":
            return reset_demo_data(settings, secrets=args.secrets)
        return list_plugins(settings)
    except SettingsError as exc:
        print(f"qatysu: {exc}", file=sys.stderr)
        return 2
    except StartupFailure as exc:
        print(f"qatysu: {exc}", file=sys.stderr)
        return 1


def generate_channel(name: str, into: Path) -> int:
    from core.host.scaffold import ScaffoldError, new_channel

    try:
        target = new_channel(name, into)
    except ScaffoldError as exc:
        print(f"qatysu: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    print(f"install it beside Qatysu: pip install -e {target}")
    print(f"then run its tests:       pytest {target / 'tests'}")
    return 0


def print_token(settings: Settings, args: argparse.Namespace) -> int:
    from core.identity.tokens import mint_token, token_keys
    from core.plugin_host.plugins import PluginHost

    if args.role == "citizen":
        problem = PluginHost(settings).jurisdiction().national_id_problem(args.sub)
        if problem is not None:
            raise SettingsError(f"--sub: {problem}")
    if args.role == "agency" and not args.agency:
        raise SettingsError("--agency is required with --role agency")
    keys = token_keys(settings)
    longest = keys.lifetimes[args.role]
    ttl = min(3600.0, longest) if args.ttl is None else args.ttl
    if not 1 <= ttl <= longest:
        raise SettingsError(
            f"--ttl must be 1 to {longest:g} seconds for {args.role} tokens "
            f"(identity.max_token_lifetime_seconds.{args.role}), not {ttl:g}"
        )
    print(
        mint_token(
            keys.hs256_secret,
            role=args.role,
            sub=args.sub,
            agency=args.agency,
            name=args.name,
            ttl=ttl,
        )
    )
    return 0


async def run_migrations(settings: Settings) -> int:
    from core.plugin_host.plugins import PluginHost
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


def reset_demo_data(settings: Settings, *, secrets: bool) -> int:
    from core.host.demo import reset_demo

    removed = reset_demo(settings, secrets=secrets)
    for path in removed:
        print(f"removed {path}")
    print("demo reset: the next serve --demo seeds afresh" if removed else "nothing to reset")
    return 0


def list_plugins(settings: Settings) -> int:
    from core.plugin_host.plugins import PluginHost

    for info in PluginHost(settings).plugins():
        version = f" {info.version}" if info.version else ""
        print(f"{info.name}{version}: {', '.join(info.hooks)}")
    return 0


def serve(settings: Settings) -> int:
    from core.identity.secret_keys import resolve_secrets

    # Checked before any worker forks, so a missing secret is one clear message, not N.
    resolve_secrets(settings)
    require_addressees(settings)
    if settings.server.workers > 1:
        from core.host.workers import serve_workers

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


def require_addressees(settings: Settings) -> None:
    """Refuse to serve when the jurisdiction registers no addressee: no petition or request
    could be addressed, nor answered."""
    from core.plugin_host.plugins import PluginHost

    jurisdiction = PluginHost(settings).jurisdiction()
    if not jurisdiction.addressee_codes():
        raise SettingsError(
            f"the {jurisdiction.name} jurisdiction registers no addressee: its register needs at "
            "least one (a config file overlays config/default.toml's unless its table sets "
            "__replace__ = true)"
        )


async def serve_forever(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT, then drain: unready, finish in-flight, flush, exit 0."""
    from core.host.server import start_server

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
