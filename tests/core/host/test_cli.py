"""``qatysu token | migrate | demo reset | plugins`` and the top-level options, run in-process
through ``core.host.cli.main``."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import shlex
from pathlib import Path
from typing import Any

import jwt
import pytest

from core.host.cli import main
from core.identity.identities import Role
from core.identity.national_id import national_id_hash
from core.identity.secret_keys import development_secrets
from core.identity.tokens import TokenKeys, TokenVerifier
from tests.support.identities import IIN_SECRET, JWT_SECRET
from tests.support.jurisdictions import kazakhstan
from tests.support.petitions import PETITION
from tests.support.services import REPO_ROOT

IIN = "900101300126"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A working directory of its own and no QATYSU_* variables from the caller's shell."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("QATYSU_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QATYSU_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("QATYSU_IDENTITY__IIN_HASH_SECRET", IIN_SECRET)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def printed_token(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, "token", *argv)
    assert (code, err) == (0, "")
    [line] = out.splitlines()
    return line


def test_a_citizen_token_carries_the_claims_and_verifies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bearer = printed_token(
        capsys, "--role", "citizen", "--sub", IIN, "--name", "Dana Nur", "--ttl", "600"
    )
    claims = jwt.decode(bearer, JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"], claims["name"]) == (IIN, "citizen", "Dana Nur")
    assert claims["exp"] - claims["iat"] == 600
    identity = TokenVerifier(
        TokenKeys(hs256_secret=JWT_SECRET.encode(), national_id_secret=IIN_SECRET.encode()),
        kazakhstan(),
    ).verify(bearer)
    assert identity.role is Role.CITIZEN
    assert identity.subject == national_id_hash(IIN, IIN_SECRET.encode())


async def test_a_printed_citizen_token_is_accepted_by_the_app(
    capsys: pytest.CaptureFixture[str], make_client: Any
) -> None:
    bearer = printed_token(capsys, "--role", "citizen", "--sub", IIN)
    client = await make_client()
    response = await client.post(
        "/api/v1/petitions", json=PETITION, headers={"Authorization": f"Bearer {bearer}"}
    )
    assert response.status == 201, await response.text()


def test_an_agency_token_carries_its_agency(capsys: pytest.CaptureFixture[str]) -> None:
    bearer = printed_token(
        capsys, "--role", "agency", "--sub", "official-1", "--agency", "almaty-akimat"
    )
    claims = jwt.decode(bearer, JWT_SECRET, algorithms=["HS256"])
    assert (claims["role"], claims["agency"]) == ("agency", "almaty-akimat")


def test_a_token_is_signed_with_the_secret_from_the_config_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QATYSU_JWT_SECRET")
    config = tmp_path / "server.toml"
    config.write_text("[identity]\njwt_secret = 'file-secret-0123456789abcdef0123456789'\n")
    bearer = printed_token(capsys, "--config", str(config), "--role", "moderator", "--sub", "m-1")
    claims = jwt.decode(bearer, "file-secret-0123456789abcdef0123456789", algorithms=["HS256"])
    assert claims["role"] == "moderator"


def test_with_dev_and_no_configured_secret_token_and_server_share_a_development_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("QATYSU_JWT_SECRET")
    first = printed_token(capsys, "--dev", "--role", "operator", "--sub", "op-1")
    second = printed_token(capsys, "--dev", "--role", "operator", "--sub", "op-2")
    secret = json.loads((tmp_path / "var" / "dev-secrets.json").read_text())["jwt_secret"]
    assert jwt.decode(first, secret, algorithms=["HS256"])["sub"] == "op-1"
    assert jwt.decode(second, secret, algorithms=["HS256"])["sub"] == "op-2"


def test_without_dev_a_token_is_refused_when_the_jwt_secret_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("QATYSU_JWT_SECRET")
    code, out, err = run(capsys, "token", "--role", "operator", "--sub", "op-1")
    assert (code, out) == (2, "")
    assert err.startswith("qatysu: identity.jwt_secret (QATYSU_JWT_SECRET) must be set")
    assert not (tmp_path / "var" / "dev-secrets.json").exists()


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        (["QATYSU_JWT_SECRET"], "identity.jwt_secret (QATYSU_JWT_SECRET) must be set"),
        (
            ["QATYSU_IDENTITY__IIN_HASH_SECRET"],
            "identity.iin_hash_secret (QATYSU_IIN_HASH_SECRET) must be set",
        ),
        (
            ["QATYSU_JWT_SECRET", "QATYSU_IDENTITY__IIN_HASH_SECRET"],
            "identity.jwt_secret (QATYSU_JWT_SECRET) and "
            "identity.iin_hash_secret (QATYSU_IIN_HASH_SECRET) must be set",
        ),
    ],
)
def test_serve_refuses_to_start_without_a_secret_and_names_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    unset: list[str],
    named: str,
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    code, out, err = run(capsys, "serve", "--port", "0")
    assert (code, out) == (2, "")
    assert err.startswith(f"qatysu: {named}: the server refuses to start without its secrets")
    assert not (tmp_path / "var" / "dev-secrets.json").exists()


def test_serve_refuses_a_secret_shorter_than_32_bytes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QATYSU_IIN_HASH_SECRET", "x" * 31)
    code, _, err = run(capsys, "serve", "--dev", "--port", "0")
    assert code == 2
    assert err == (
        "qatysu: invalid settings: identity.iin_hash_secret: "
        "Value error, a secret must be at least 32 bytes long\n"
    )


def test_the_short_form_sets_the_iin_hash_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.host.cli import build_parser, settings_from_args

    monkeypatch.delenv("QATYSU_IDENTITY__IIN_HASH_SECRET")
    monkeypatch.setenv("QATYSU_IIN_HASH_SECRET", "i" * 32)
    settings = settings_from_args(build_parser().parse_args(["serve"]))
    assert settings.identity.iin_hash_secret == "i" * 32


@pytest.mark.parametrize(
    ("sub", "reason"),
    [
        ("900101300123", "the control digit of the IIN does not match"),
        ("12345", "an IIN is exactly twelve digits"),
        ("901301300126", "the first six digits of an IIN must be a birth date"),
    ],
)
def test_a_citizen_token_for_an_invalid_iin_is_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str], sub: str, reason: str
) -> None:
    code, out, err = run(capsys, "token", "--role", "citizen", "--sub", sub)
    assert code == 2
    assert out == ""
    assert err == f"qatysu: --sub: {reason}\n"


def test_an_agency_token_without_agency_is_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "token", "--role", "agency", "--sub", "official-1")
    assert (code, out) == (2, "")
    assert err == "qatysu: --agency is required with --role agency\n"


@pytest.mark.parametrize(
    ("role", "ttl", "longest"),
    [
        # Accepted on 6a18a39: a token already expired, and one for ten years.
        ("moderator", "-60", "28800"),
        ("moderator", "315360000", "28800"),
        ("operator", "0", "28800"),
        ("operator", "0.5", "28800"),
        ("operator", "28801", "28800"),
        ("citizen", "86401", "86400"),
        ("citizen", "nan", "86400"),
        ("citizen", "inf", "86400"),
    ],
)
def test_a_ttl_outside_one_second_to_the_roles_maximum_is_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str], role: str, ttl: str, longest: str
) -> None:
    sub = IIN if role == "citizen" else "official-1"
    code, out, err = run(capsys, "token", "--role", role, "--sub", sub, "--ttl", ttl)
    assert (code, out) == (2, "")
    assert err == (
        f"qatysu: --ttl must be 1 to {longest} seconds for {role} tokens "
        f"(identity.max_token_lifetime_seconds.{role}), not {float(ttl):g}\n"
    )


@pytest.mark.parametrize(("role", "ttl"), [("citizen", 86400), ("operator", 28800)])
def test_a_ttl_of_exactly_the_roles_maximum_gives_a_token_the_server_accepts(
    capsys: pytest.CaptureFixture[str], role: str, ttl: int
) -> None:
    sub = IIN if role == "citizen" else "official-1"
    bearer = printed_token(capsys, "--role", role, "--sub", sub, "--ttl", str(ttl))
    claims = jwt.decode(bearer, JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == ttl
    verifier = TokenVerifier(
        TokenKeys(hs256_secret=JWT_SECRET.encode(), national_id_secret=IIN_SECRET.encode()),
        kazakhstan(),
    )
    assert verifier.verify(bearer).role == role


def test_the_ttl_is_bounded_by_the_configured_maximum_and_defaults_within_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QATYSU_IDENTITY__MAX_TOKEN_LIFETIME_SECONDS__OPERATOR", "600")
    code, _, err = run(capsys, "token", "--role", "operator", "--sub", "op-1", "--ttl", "601")
    assert code == 2
    assert "--ttl must be 1 to 600 seconds for operator tokens" in err
    bearer = printed_token(capsys, "--role", "operator", "--sub", "op-1")
    claims = jwt.decode(bearer, JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600


def test_an_unknown_role_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "--role", "admin", "--sub", "x"])
    assert exited.value.code == 2
    assert "invalid choice: 'admin'" in capsys.readouterr().err


def test_migrate_applies_then_reports_up_to_date(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code, out, _ = run(capsys, "migrate", "--database-url", url)
    assert code == 0
    lines = out.splitlines()
    applied = [line for line in lines if line.startswith("applied ")]
    # Other channels add their own migrations; the reference plugin's is among them.
    assert "applied petitions 1: petitions and their signatures" in applied
    assert lines == [*applied, f"{len(applied)} migration(s) applied"]
    code, out, _ = run(capsys, "migrate", "--database-url", url)
    assert (code, out) == (0, "schema up to date\n")


def test_migrate_takes_the_database_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QATYSU_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    code, out, _ = run(capsys, "migrate")
    assert code == 0
    assert out.endswith("migration(s) applied\n")
    assert (tmp_path / "env.db").exists()


def test_migrate_refuses_an_unsupported_database_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "migrate", "--database-url", "mysql://u@h/d")
    assert code == 2
    assert err == (
        "qatysu: database.url: 'mysql' is not supported; use sqlite:/// or postgresql://\n"
    )


def test_plugins_lists_the_built_in_petitions_plugin_with_its_package_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    [line] = [line for line in out.splitlines() if line.startswith("plugins.petitions")]
    name, _, hooks = line.partition(": ")
    assert name == f"plugins.petitions {importlib.metadata.version('qatysu')}"
    assert set(hooks.split(", ")) >= {
        "qatysu_add_routes",
        "qatysu_migrations",
        "qatysu_settings_section",
    }


def test_plugins_leaves_out_a_disabled_plugin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QATYSU_PLUGINS__DISABLED", '["plugins.petitions"]')
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    assert "plugins.petitions" not in out


@pytest.mark.parametrize(
    "command", [["plugins"], ["migrate"], ["token", "--role", "operator", "--sub", "op-1"]]
)
def test_an_invalid_environment_setting_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("QATYSU_SERVER__PORT", "eighty")
    code, out, err = run(capsys, *command)
    assert (code, out) == (2, "")
    assert err.startswith("qatysu: invalid settings: server.port: ")


def test_an_invalid_plugin_setting_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QATYSU_PETITIONS__CO_SIGNER_MINIMUM", "0")
    code, _, err = run(capsys, "plugins")
    assert code == 2
    assert err == (
        "qatysu: invalid settings: petitions.co_signer_minimum: "
        "Input should be greater than or equal to 1\n"
    )


def test_a_missing_config_file_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "plugins", "--config", str(tmp_path / "missing.toml"))
    assert code == 2
    assert err == f"qatysu: config file {tmp_path / 'missing.toml'} does not exist\n"


# --- top-level options and start-up checks -----------------------------------------------------


def unconfigured_logging() -> None:
    """A root logger with no handler, as in a fresh ``qatysu`` process (pytest's are put back)."""
    logging.getLogger().handlers.clear()


def test_version_prints_the_installed_version_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"qatysu {version('qatysu')}\n"


def test_log_format_json_writes_one_json_object_per_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    unconfigured_logging()
    code, _, _ = run(capsys, "--log-format", "json", "plugins")
    logging.getLogger("qatysu").warning("disk %s full", "var")

    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert code == 0
    assert {k: entry[k] for k in ("level", "logger", "message")} == {
        "level": "warning",
        "logger": "qatysu",
        "message": "disk var full",
    }
    assert entry["time"].endswith("+00:00")


def test_log_level_warning_drops_info_lines(capsys: pytest.CaptureFixture[str]) -> None:
    unconfigured_logging()
    run(capsys, "--log-level", "warning", "plugins")
    logging.getLogger("qatysu").info("routine")
    logging.getLogger("qatysu").warning("unusual")

    err = capsys.readouterr().err
    assert "routine" not in err
    assert err.rstrip().endswith("WARNING qatysu unusual")


def test_the_log_format_comes_from_the_environment_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QATYSU_LOGGING__FORMAT", "json")
    unconfigured_logging()
    run(capsys, "plugins")
    logging.getLogger("qatysu").warning("from env")

    assert json.loads(capsys.readouterr().err)["message"] == "from env"


def test_an_unknown_log_level_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-level", "loud", "plugins"])

    assert exit_info.value.code == 2
    assert "invalid choice: 'loud'" in capsys.readouterr().err


def test_serve_refuses_a_jurisdiction_with_no_addressee_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The working directory has no config/default.toml, so nothing registers an agency.
    code, out, err = run(capsys, "serve", "--port", "0")

    assert (code, out) == (2, "")
    assert err.startswith(
        "qatysu: the kazakhstan jurisdiction registers no addressee: its register needs at least"
    )


# --- first run: the README's token example, and demo reset -------------------------------------


def readme_token_examples() -> list[list[str]]:
    """Every runnable ``qatysu token`` command the README shows inline (not the synopsis)."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"`(?:\.venv/bin/)?qatysu (token [^`\[]+)`", readme)
    return [shlex.split(command) for command in commands]


def test_the_readme_token_examples_run_as_written_against_the_demo_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # As after `make run`: no configured secret, the demo's development one in ./var.
    for name in ("QATYSU_JWT_SECRET", "QATYSU_IDENTITY__IIN_HASH_SECRET"):
        monkeypatch.delenv(name)
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("QATYSU_SERVER__DATA_DIR", str(tmp_path / "var"))
    demo_secret = development_secrets(tmp_path / "var")["jwt_secret"]
    examples = readme_token_examples()

    assert examples
    for argv in examples:
        code, out, err = run(capsys, *argv)
        assert (code, err) == (0, ""), argv
        claims = jwt.decode(out.strip(), demo_secret, algorithms=["HS256"])
        assert claims["sub"] == argv[argv.index("--sub") + 1]


def test_without_a_secret_token_advises_dev_and_the_advice_works(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QATYSU_JWT_SECRET")
    argv = ["token", "--role", "operator", "--sub", "op-1"]

    code, _, err = run(capsys, *argv)

    assert code == 2
    assert err.rstrip().endswith("for a local trial run, add --dev (serve also takes --demo)")
    assert run(capsys, *argv, "--dev")[0] == 0


def demo_files(data_dir: Path) -> list[Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    files = [data_dir / name for name in ("qatysu.db", "qatysu.db-wal", "qatysu.db-shm")]
    for path in files:
        path.write_bytes(b"demo")
    (data_dir / "prometheus").mkdir()
    (data_dir / "prometheus" / "counter_1.db").write_bytes(b"")
    return files


def test_demo_reset_deletes_the_demo_database_and_keeps_the_development_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    files = demo_files(data_dir)
    secrets = development_secrets(data_dir)

    code, out, _ = run(capsys, "demo", "reset")

    assert code == 0
    assert [p for p in (*files, data_dir / "prometheus") if p.exists()] == []
    assert development_secrets(data_dir) == secrets
    assert out.splitlines() == [
        *(f"removed {Path('var') / p.name}" for p in files),
        f"removed {Path('var') / 'prometheus'}",
        "demo reset: the next serve --demo seeds afresh",
    ]


def test_demo_reset_with_secrets_deletes_the_development_secrets_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    demo_files(data_dir)
    development_secrets(data_dir)

    assert run(capsys, "demo", "reset", "--secrets")[0] == 0
    assert list(data_dir.iterdir()) == []


def test_demo_reset_with_nothing_there_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "demo", "reset") == (0, "nothing to reset\n", "")


def test_demo_reset_refuses_a_configured_database_and_deletes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = demo_files(tmp_path / "var")
    monkeypatch.setenv("QATYSU_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'qatysu.db'}")

    code, out, err = run(capsys, "demo", "reset")

    assert (code, out) == (2, "")
    assert err.startswith("qatysu: demo reset deletes only the embedded demo database")
    assert all(path.exists() for path in files)
