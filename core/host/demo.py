"""What ``qatysu serve --demo`` prints: the seeded data, and one sample token per role.

Each plugin seeds its own data and returns its own lines (``qatysu_demo_seed``); ``HOST`` in a
line stands for the server's address.

Sample tokens live as long as their role's tokens may (``identity.max_token_lifetime_seconds``)
and include operator, moderator and agency ones. They are printed
only when the token key is a development one: signed with an operator's own secret they would
be real privileged credentials written to a terminal and its logs.

``qatysu demo reset`` starts the demo over: it deletes the embedded SQLite database (and the
multiprocess metrics directory) under ``server.data_dir``, so the next ``serve --demo`` seeds
afresh; with ``--secrets`` the development secrets go too, and with them every token minted
from them. It refuses any other database: a configured one is never the demo's to delete.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from core import keys
from core.identity import keys as identity_keys
from core.identity.secret_keys import DEV_SECRETS_FILE, resolve_secrets
from core.identity.tokens import mint_token, role_lifetimes
from core.plugin_host import keys as plugin_host_keys
from core.settings import Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aiohttp import web

    from core.identity.jurisdiction import Jurisdiction

DEMO_DATABASE = "qatysu.db"
# SQLite's write-ahead log and shared-memory index belong to the database file.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


async def print_demo(app: web.Application) -> None:
    """Seed the demo data and print it, with sample tokens when the secrets allow it."""
    settings = app[keys.SETTINGS]
    lines = await app[plugin_host_keys.PLUGINS].demo_seed(app)
    server_secrets = resolve_secrets(settings)
    if server_secrets.jwt_configured:
        lines += [
            "",
            "No sample tokens: QATYSU_JWT_SECRET is configured, and tokens signed with it would",
            "be real credentials. Mint one for a test account with `qatysu token`.",
        ]
    else:
        lines += demo_token_lines(
            server_secrets.jwt_secret,
            role_lifetimes(settings.identity.max_token_lifetime_seconds),
            app[identity_keys.JURISDICTION],
        )
    address = f"{settings.server.host}:{settings.server.port}"
    print("\n".join(line.replace("HOST", address) for line in lines), flush=True)


def demo_token_lines(
    secret: bytes, lifetimes: Mapping[str, float], jurisdiction: Jurisdiction
) -> list[str]:
    # The sample citizen and agency are the jurisdiction's: a valid identifier, the first code.
    agency = next(iter(jurisdiction.addressee_codes()), None)
    tokens = {
        "citizen": mint_token(
            secret,
            role="citizen",
            sub=jurisdiction.sample_national_id(42),
            name="Aigerim Sadykova",
            ttl=lifetimes["citizen"],
        ),
        "moderator": mint_token(
            secret,
            role="moderator",
            sub="moderator-demo",
            name="Dana Moderator",
            ttl=lifetimes["moderator"],
        ),
        "agency": mint_token(
            secret,
            role="agency",
            sub="official-demo",
            agency=agency,
            name="Agency Official",
            ttl=lifetimes["agency"],
        ),
        "operator": mint_token(
            secret, role="operator", sub="operator-demo", ttl=lifetimes["operator"]
        ),
    }
    valid = ", ".join(f"{role} {lifetimes[role] / 3600:g} h" for role in tokens)
    lines = ["", f"Sample tokens (valid {valid}); use as 'Authorization: Bearer <token>':"]
    lines += [f"  {role:<9} {value}" for role, value in tokens.items()]
    lines.append("")
    return lines


def reset_demo(settings: Settings, *, secrets: bool = False) -> list[Path]:
    """Delete the demo's database under ``server.data_dir``; the paths that were there."""
    if settings.database.url:
        raise SettingsError(
            "demo reset deletes only the embedded demo database under server.data_dir; "
            "database.url is set, so drop or empty that database yourself"
        )
    data_dir = Path(settings.server.data_dir)
    removed = []
    for suffix in SQLITE_COMPANIONS:
        path = data_dir / f"{DEMO_DATABASE}{suffix}"
        if path.exists():
            path.unlink()
            removed.append(path)
    metrics = data_dir / "prometheus"
    if metrics.is_dir():
        shutil.rmtree(metrics)
        removed.append(metrics)
    if secrets and (data_dir / DEV_SECRETS_FILE).exists():
        (data_dir / DEV_SECRETS_FILE).unlink()
        removed.append(data_dir / DEV_SECRETS_FILE)
    return removed
