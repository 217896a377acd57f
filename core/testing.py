"""The kit a plugin's own tests use: an app on a throwaway database, and tokens for each role.

Public, like ``core.sdk``: ``qatysu new-channel`` generates tests that use it, and a third-party
plugin's tests may too. It is for tests only: the secrets below are public.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.host.app import create_app
from core.identity.keys import JURISDICTION
from core.identity.tokens import mint_token
from core.settings import load_settings

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp import web

    from core.settings import Settings

JWT_SECRET = "qatysu-test-kit-jwt-secret-never-for-production"
NATIONAL_ID_SECRET = "qatysu-test-kit-national-id-secret-never-for-production"


def settings_for_tests(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    """The default settings on a SQLite database in ``data_dir``, migrated at start, with the
    kit's secrets, admission off and every answer checked against its declared model;
    ``sections`` overlay them (``petitions={"sign_rate": 2.0}``)."""
    overrides: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(data_dir), "access_log": False, "validate_responses": True},
        "identity": {"jwt_secret": JWT_SECRET, "iin_hash_secret": NATIONAL_ID_SECRET},
        "database": {"url": f"sqlite:///{data_dir / 'qatysu.db'}", "migrate_on_start": True},
        "admission": {"enabled": False},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(environ={}, overrides=overrides)


def app_for_tests(data_dir: Path, **sections: dict[str, Any]) -> web.Application:
    """The whole server, with every installed plugin, as ``settings_for_tests`` configures it:
    hand it to pytest-aiohttp's ``aiohttp_client``."""
    return create_app(settings_for_tests(data_dir, **sections))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def citizen_headers(app: web.Application, n: int = 1, name: str = "Test Citizen") -> dict[str, str]:
    """Headers that sign the request as the n-th synthetic citizen of ``app``'s jurisdiction."""
    national_id = app[JURISDICTION].sample_national_id(n)
    return _bearer(mint_token(JWT_SECRET.encode(), role="citizen", sub=national_id, name=name))


def official_headers(agency: str) -> dict[str, str]:
    """Headers that sign the request as an official of ``agency``."""
    secret = JWT_SECRET.encode()
    return _bearer(
        mint_token(secret, role="agency", sub=f"official-{agency}", agency=agency, name="Official")
    )


def moderator_headers() -> dict[str, str]:
    """Headers that sign the request as a moderator."""
    return _bearer(mint_token(JWT_SECRET.encode(), role="moderator", sub="moderator-1"))
