"""Explicit secrets: refused when missing outside development mode; a private development file."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from core.identity.secret_keys import development_secrets, resolve_secrets
from core.settings import SettingsError, build_settings
from tests.support.identities import IIN_SECRET, JWT_SECRET


def settings(tmp_path: Path, **server: Any) -> Any:
    return build_settings({"server": {"data_dir": str(tmp_path), **server}})


def test_the_development_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    development_secrets(tmp_path)
    mode = stat.S_IMODE((tmp_path / "dev-secrets.json").stat().st_mode)
    assert mode == 0o600


def test_the_development_file_is_kept_between_starts(tmp_path: Path) -> None:
    assert development_secrets(tmp_path) == development_secrets(tmp_path)


def test_the_development_file_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    development_secrets(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["dev-secrets.json"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_development_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    development_secrets(tmp_path)
    path = tmp_path / "dev-secrets.json"
    path.chmod(mode)
    with pytest.raises(SettingsError, match=rf"readable by others \(mode 0{mode:o}\)"):
        development_secrets(tmp_path)


def test_a_development_file_without_a_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dev-secrets.json"
    path.write_text('{"jwt_secret": "x"}')
    path.chmod(0o600)
    with pytest.raises(SettingsError, match="lacks a secret"):
        development_secrets(tmp_path)


def test_outside_development_mode_no_development_file_is_used(tmp_path: Path) -> None:
    development_secrets(tmp_path)
    with pytest.raises(SettingsError, match=r"QATYSU_JWT_SECRET\) and identity.iin_hash_secret"):
        resolve_secrets(settings(tmp_path))


@pytest.mark.parametrize("flag", ["dev", "demo"])
def test_development_mode_fills_only_the_missing_secret(tmp_path: Path, flag: str) -> None:
    configured = build_settings(
        {
            "server": {"data_dir": str(tmp_path), flag: True},
            "identity": {"iin_hash_secret": IIN_SECRET},
        }
    )
    resolved = resolve_secrets(configured)
    stored = development_secrets(tmp_path)
    assert resolved.iin_hash_secret == IIN_SECRET.encode()
    assert resolved.jwt_secret == stored["jwt_secret"].encode()
    assert resolved.jwt_configured is False


def test_configured_secrets_are_used_as_they_are_and_no_file_is_written(tmp_path: Path) -> None:
    configured = build_settings(
        {
            "server": {"data_dir": str(tmp_path)},
            "identity": {"jwt_secret": JWT_SECRET, "iin_hash_secret": IIN_SECRET},
        }
    )
    resolved = resolve_secrets(configured)
    assert (resolved.jwt_secret, resolved.iin_hash_secret) == (
        JWT_SECRET.encode(),
        IIN_SECRET.encode(),
    )
    assert resolved.jwt_configured is True
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["jwt_secret", "iin_hash_secret"])
def test_a_secret_of_31_bytes_is_refused_and_one_of_32_accepted(name: str) -> None:
    with pytest.raises(SettingsError, match=rf"identity.{name}: .*at least 32 bytes"):
        build_settings({"identity": {name: "s" * 31}})
    assert getattr(build_settings({"identity": {name: "s" * 32}}).identity, name) == "s" * 32
