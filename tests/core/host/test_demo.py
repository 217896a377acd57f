"""``--demo`` prints privileged tokens, each living its role's longest lifetime, only when they
are signed with development keys."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from aiohttp import web

from core.host.app import create_app
from core.host.demo import print_demo
from core.identity.secret_keys import development_secrets
from core.identity.tokens import TokenKeys, TokenVerifier
from core.settings import build_settings
from tests.support.identities import IIN_SECRET, JWT_SECRET
from tests.support.jurisdictions import kazakhstan
from tests.support.services import REGISTER


async def demo_output(tmp_path: Path, capsys: pytest.CaptureFixture[str], **identity: str) -> str:
    settings = build_settings(
        {
            "server": {"data_dir": str(tmp_path), "demo": True},
            "identity": identity,
            "database": {"migrate_on_start": True},
            "admission": {"enabled": False},
            **REGISTER,
        }
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await print_demo(app)
    finally:
        await runner.cleanup()
    return capsys.readouterr().out


async def test_with_a_configured_jwt_secret_the_demo_prints_no_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await demo_output(tmp_path, capsys, jwt_secret=JWT_SECRET, iin_hash_secret=IIN_SECRET)
    assert "No sample tokens: QATYSU_JWT_SECRET is configured" in out
    assert "eyJ" not in out


async def test_with_development_secrets_the_demo_prints_tokens_signed_with_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await demo_output(tmp_path, capsys)
    secret = development_secrets(tmp_path)["jwt_secret"]
    printed = {line.split()[0]: line.split()[1] for line in out.splitlines() if " eyJ" in line}
    roles = {
        role: jwt.decode(value, secret, algorithms=["HS256"])["role"]
        for role, value in printed.items()
    }
    assert roles == {r: r for r in ("citizen", "moderator", "agency", "operator")}


async def test_plugins_lines_are_printed_with_host_as_the_servers_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await demo_output(tmp_path, capsys)

    lines = out.splitlines()
    assert "  try: curl -s http://127.0.0.1:8080/api/v1/petitions?sort=signatures" in lines
    assert "HOST" not in out


async def test_each_printed_token_lives_its_roles_longest_lifetime_and_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await demo_output(tmp_path, capsys)
    secret = development_secrets(tmp_path)["jwt_secret"]
    printed = {line.split()[0]: line.split()[1] for line in out.splitlines() if " eyJ" in line}
    claims = {
        role: jwt.decode(value, secret, algorithms=["HS256"]) for role, value in printed.items()
    }
    lifetimes = {role: value["exp"] - value["iat"] for role, value in claims.items()}
    assert lifetimes == {"citizen": 86400, "moderator": 28800, "agency": 28800, "operator": 28800}
    verifier = TokenVerifier(
        TokenKeys(hs256_secret=secret.encode(), national_id_secret=b"i" * 32), kazakhstan()
    )
    assert {verifier.verify(value).role for value in printed.values()} == set(printed)
