"""The built-in bearer-token provider: loaded by name, verifying with the app's own keys, last."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from core.host.app import create_app
from core.identity.identities import Identity, Role
from core.identity.national_id import national_id_hash
from core.identity.tokens import mint_token
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.hookspecs import hookimpl
from core.wire.errors import Unauthorized
from plugins import bearer_tokens
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.identities import IIN_SECRET, token
from tests.support.services import REPO_ROOT, SettingsFactory

OTHER_IIN_SECRET = "another-iin-secret-that-is-long-enough-0123"


def app_with(
    make_settings: SettingsFactory, *extra_plugins: object, **sections: Any
) -> web.Application:
    return create_app(make_settings(**sections), extra_plugins=extra_plugins)


async def identify(app: web.Application, bearer: str) -> Identity | None:
    request = make_mocked_request("GET", "/", app=app)
    return await app[plugin_host_keys.PLUGINS].identify(request, bearer)


def test_the_provider_is_a_built_in_plugin_loaded_by_name(make_settings: SettingsFactory) -> None:
    host = app_with(make_settings)[plugin_host_keys.PLUGINS]

    assert host.pm.get_plugin("plugins.bearer_tokens") is sys.modules["plugins.bearer_tokens"]
    [info] = [info for info in host.plugins() if info.name == "plugins.bearer_tokens"]
    assert info.hooks == ("qatysu_identify",)


async def test_a_valid_token_gives_the_identity_with_the_hashed_iin(
    make_settings: SettingsFactory,
) -> None:
    app = app_with(make_settings)
    iin = synthetic_iin(7)

    identity = await identify(app, token("citizen", iin, name="Aigerim Sadykova"))

    assert identity == Identity(
        subject=national_id_hash(iin, IIN_SECRET.encode()),
        role=Role.CITIZEN,
        name="Aigerim Sadykova",
    )


async def test_each_app_verifies_with_its_own_keys(make_settings: SettingsFactory) -> None:
    iin = synthetic_iin(7)
    bearer = token("citizen", iin)
    ours = app_with(make_settings)
    theirs = app_with(make_settings, identity={"iin_hash_secret": OTHER_IIN_SECRET})

    assert (await identify(ours, bearer)) == Identity(
        subject=national_id_hash(iin, IIN_SECRET.encode()), role=Role.CITIZEN
    )
    assert (await identify(theirs, bearer)) == Identity(
        subject=national_id_hash(iin, OTHER_IIN_SECRET.encode()), role=Role.CITIZEN
    )


async def test_a_token_that_does_not_verify_is_refused_with_the_reason(
    make_settings: SettingsFactory,
) -> None:
    app = app_with(make_settings)
    forged = mint_token(b"not-the-servers-secret-0123456789abcdef", role="moderator", sub="m-1")

    with pytest.raises(Unauthorized) as caught:
        bearer_tokens.qatysu_identify(make_mocked_request("GET", "/", app=app), forged)

    assert caught.value.detail == "the token's signature does not verify"


class EveryoneIsAnOperator:
    """A provider that answers for any token, so the JWT provider is never asked."""

    @hookimpl
    def qatysu_identify(self, request: web.Request, token: str) -> Identity:
        return Identity(subject="sso-operator", role=Role.OPERATOR)


async def test_another_provider_answers_before_the_jwt_is_verified(
    make_settings: SettingsFactory,
) -> None:
    app = app_with(make_settings, EveryoneIsAnOperator())

    # Not a JWT: had the bearer-token provider run, this would be refused.
    identity = await identify(app, "opaque-sso-ticket")

    assert identity == Identity(subject="sso-operator", role=Role.OPERATOR)


async def test_switched_off_by_name_it_verifies_nothing(make_settings: SettingsFactory) -> None:
    app = app_with(make_settings, plugins={"disabled": ["plugins.bearer_tokens"]})

    assert app[plugin_host_keys.PLUGINS].pm.get_plugin("plugins.bearer_tokens") is None
    assert await identify(app, token("operator", "operator-1")) is None


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
    return modules


def test_no_core_module_imports_a_plugin() -> None:
    importers = {
        str(path.relative_to(REPO_ROOT)): sorted(
            name
            for name in imported_modules(path)
            if name == "plugins" or name.startswith("plugins.")
        )
        for path in sorted((REPO_ROOT / "core").rglob("*.py"))
    }
    assert {path: names for path, names in importers.items() if names} == {}


def test_the_identity_module_holds_no_hook_implementation() -> None:
    assert "core.plugin_host.hookspecs" not in imported_modules(
        REPO_ROOT / "core" / "identity" / "tokens.py"
    )
