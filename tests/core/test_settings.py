"""Settings: each layer overrides the one before it, and every failure names the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.plugin_host.plugins import PluginHost
from core.settings import (
    RateOverride,
    Settings,
    SettingsError,
    build_settings,
    load_settings,
)
from tests.support.services import REPO_ROOT


def agencies(settings: Settings) -> dict[str, Any]:
    """The agency register as read into the kazakhstan plugin's section."""
    register: dict[str, Any] = settings.plugin_sections["kazakhstan"]["agencies"]
    return register


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qatysu.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def no_default_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings reads ./config/default.toml when present: keep the repository's out of it.
    monkeypatch.chdir(tmp_path)


def test_defaults_apply_with_no_file_no_environment_and_no_flags() -> None:
    settings = load_settings(environ={})
    assert settings.server.port == 8080
    assert settings.server.host == "127.0.0.1"
    assert settings.identity.algorithms == ("HS256",)
    assert settings.redis.url is None
    assert settings.database_url == f"sqlite:///{Path('var') / 'qatysu.db'}"


def test_the_config_file_overrides_a_default(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nport = 9001\n")
    assert load_settings(config_file=config, environ={}).server.port == 9001


def test_the_environment_overrides_the_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nport = 9001\n")
    settings = load_settings(config_file=config, environ={"QATYSU_SERVER__PORT": "9002"})
    assert settings.server.port == 9002


def test_a_cli_override_beats_the_environment_and_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nport = 9001\n")
    settings = load_settings(
        config_file=config,
        environ={"QATYSU_SERVER__PORT": "9002"},
        overrides={"server": {"port": 9003}},
    )
    assert settings.server.port == 9003


def test_a_cli_flag_that_was_not_given_leaves_the_lower_layers_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nport = 9001\nhost = '0.0.0.0'\n")
    settings = load_settings(
        config_file=config,
        environ={"QATYSU_SERVER__PORT": "9002"},
        overrides={"server": {"port": None, "host": None}},
    )
    assert settings.server.port == 9002
    assert settings.server.host == "0.0.0.0"


def test_layers_merge_key_by_key_within_a_section(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nport = 9001\nworkers = 3\n")
    settings = load_settings(config_file=config, environ={"QATYSU_SERVER__HOST": "10.0.0.1"})
    assert (settings.server.port, settings.server.workers, settings.server.host) == (
        9001,
        3,
        "10.0.0.1",
    )


def test_the_default_config_file_is_read_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "default.toml").write_text("[server]\nport = 9111\n")
    assert load_settings(environ={}).server.port == 9111


def test_the_short_environment_forms_set_secrets_database_and_redis() -> None:
    settings = load_settings(
        environ={
            "QATYSU_JWT_SECRET": "s3cret-" * 5,
            "QATYSU_IIN_HASH_SECRET": "iin-key-" * 4,
            "QATYSU_DATABASE_URL": "postgresql://qatysu@db/qatysu",
            "QATYSU_REDIS_URL": "redis://cache:6379/1",
        }
    )
    assert settings.identity.jwt_secret == "s3cret-" * 5
    assert settings.identity.iin_hash_secret == "iin-key-" * 4
    assert settings.database.url == "postgresql://qatysu@db/qatysu"
    assert settings.database_url == "postgresql://qatysu@db/qatysu"
    assert settings.redis.url == "redis://cache:6379/1"


def test_a_short_environment_form_overrides_the_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"[identity]\njwt_secret = '{'from-file-' * 4}'\n")
    settings = load_settings(config_file=config, environ={"QATYSU_JWT_SECRET": "from-env-" * 4})
    assert settings.identity.jwt_secret == "from-env-" * 4


def test_nested_environment_keys_reach_nested_settings() -> None:
    settings = load_settings(
        environ={
            "QATYSU_ADMISSION__RATE_OVERRIDES__PUBLIC_READ__RATE": "5.5",
            "QATYSU_ADMISSION__RATE_OVERRIDES__PUBLIC_READ__BURST": "7",
        }
    )
    assert settings.admission.rate_overrides == {"public_read": RateOverride(rate=5.5, burst=7)}


def test_environment_values_that_look_like_json_are_read_as_json() -> None:
    settings = load_settings(
        environ={
            "QATYSU_KAZAKHSTAN__CALENDAR__HOLIDAYS": '["2024-03-08", "2024-03-21"]',
            "QATYSU_ADMISSION__RATE_OVERRIDES": '{"petition-sign": {"rate": 2, "burst": 3}}',
            "QATYSU_SERVER__TRUSTED_PROXIES": ' ["10.0.0.1"]',
        }
    )
    # A plugin's section is kept as read, and validated when the plugins are loaded.
    assert settings.plugin_sections["kazakhstan"]["calendar"]["holidays"] == [
        "2024-03-08",
        "2024-03-21",
    ]
    assert settings.admission.rate_overrides == {"petition-sign": RateOverride(rate=2, burst=3)}
    assert settings.server.trusted_proxies == ("10.0.0.1",)


def test_environment_json_that_does_not_parse_names_the_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"QATYSU_KAZAKHSTAN__CALENDAR__HOLIDAYS": "[2024-03-08"})
    assert str(caught.value).startswith(
        "environment variable QATYSU_KAZAKHSTAN__CALENDAR__HOLIDAYS is not valid JSON: "
    )


def test_unrelated_environment_variables_are_ignored() -> None:
    settings = load_settings(environ={"QATYSU_SOMETHING": "x", "HOME": "/root", "PATH": "/bin"})
    assert settings.plugin_sections == {}


def test_an_environment_name_with_an_empty_part_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"QATYSU_SERVER__": "1"})
    assert str(caught.value) == "environment variable QATYSU_SERVER__ does not name a setting"


def test_an_unknown_key_in_the_config_file_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nprot = 9001\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=config, environ={})
    assert str(caught.value) == "invalid settings: server.prot: unknown setting"


def test_an_unknown_key_in_the_environment_is_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"QATYSU_WRITER__QUEUE_SIZ": "10"})
    assert str(caught.value) == "invalid settings: writer.queue_siz: unknown setting"


def test_the_retired_metrics_enabled_setting_is_refused_rather_than_ignored() -> None:
    # It never switched anything off; a config that still sets it learns so at start.
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"QATYSU_METRICS__ENABLED": "false"})
    assert str(caught.value) == "invalid settings: metrics.enabled: unknown setting"


def test_the_shipped_config_file_loads_with_every_core_setting_it_names() -> None:
    settings = load_settings(config_file=REPO_ROOT / "config" / "default.toml", environ={})
    assert settings.database.statement_timeout == 5.0
    assert settings.metrics.exposure == "same_port"


def test_a_value_of_the_wrong_type_is_named_with_the_reason() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"QATYSU_SERVER__PORT": "eighty"})
    assert str(caught.value).startswith("invalid settings: server.port: ")
    assert "valid integer" in str(caught.value)


def test_a_value_out_of_range_is_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(overrides={"writer": {"queue_size": 0}}, environ={})
    assert str(caught.value) == (
        "invalid settings: writer.queue_size: Input should be greater than or equal to 1"
    )


def test_a_bad_nested_value_names_its_whole_path() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"QATYSU_ADMISSION__RATE_OVERRIDES__PUBLIC_READ__RATE": "0"})
    assert str(caught.value).startswith(
        "invalid settings: admission.rate_overrides.public_read.rate: "
    )


def test_an_invalid_weekend_day_is_named_when_the_plugins_load() -> None:
    settings = load_settings(environ={"QATYSU_KAZAKHSTAN__CALENDAR__WEEKEND": "[5, 7]"})
    with pytest.raises(SettingsError) as caught:
        PluginHost(settings)
    assert str(caught.value) == (
        "invalid settings: kazakhstan.calendar.weekend: Value error, "
        "weekend days are 0 (Monday) to 6 (Sunday)"
    )


def test_a_section_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, "nosuch = 3\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=config, environ={})
    assert str(caught.value) == "setting [nosuch] must be a table of keys, not 3"


def test_an_unknown_section_is_named_once_plugins_are_loaded(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[petitons]\nco_signer_minimum = 5\n")
    settings = load_settings(config_file=config, environ={})
    with pytest.raises(SettingsError) as caught:
        PluginHost(settings)
    assert str(caught.value) == "unknown settings section(s): [petitons]"


def test_an_invalid_plugin_setting_names_the_plugin_section_and_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[petitions]\nco_signer_minimum = 0\n")
    settings = load_settings(config_file=config, environ={})
    with pytest.raises(SettingsError) as caught:
        PluginHost(settings)
    assert str(caught.value) == (
        "invalid settings: petitions.co_signer_minimum: Input should be greater than or equal to 1"
    )


def test_an_unknown_plugin_setting_from_the_environment_is_named() -> None:
    settings = load_settings(environ={"QATYSU_PETITIONS__NO_SUCH_KEY": "1"})
    with pytest.raises(SettingsError) as caught:
        PluginHost(settings)
    assert str(caught.value) == "invalid settings: petitions.no_such_key: unknown setting"


def test_a_valid_plugin_setting_reaches_the_plugin(tmp_path: Path) -> None:
    from plugins.petitions.settings import PetitionSettings

    config = write_config(tmp_path, "[petitions]\nco_signer_minimum = 5\n")
    host = PluginHost(load_settings(config_file=config, environ={}))
    assert host.settings_of("petitions", PetitionSettings).co_signer_minimum == 5


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server\nport = 1\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=config, environ={})
    assert str(caught.value).startswith(f"config file {config} is not valid TOML: ")


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=missing, environ={})
    assert str(caught.value) == f"config file {missing} does not exist"


def test_settings_are_immutable() -> None:
    settings = build_settings({})
    with pytest.raises(ValueError, match="frozen"):
        settings.server.port = 1  # type: ignore[misc]


# --- config layers: a config file overlays config/default.toml --------------------------------


@pytest.fixture
def shipped_defaults(tmp_path: Path) -> Path:
    """The repository's config/default.toml, in the working directory the server reads it from."""
    (tmp_path / "config").mkdir()
    default = tmp_path / "config" / "default.toml"
    default.write_text((REPO_ROOT / "config" / "default.toml").read_text(encoding="utf-8"))
    return default


def test_a_config_file_with_one_changed_key_keeps_the_agency_register(
    tmp_path: Path, shipped_defaults: Path
) -> None:
    shipped = load_settings(environ={})
    mine = write_config(tmp_path, "[server]\nport = 9001\n")

    settings = load_settings(config_file=mine, environ={})

    assert settings.server.port == 9001
    assert len(agencies(shipped)) > 10
    assert settings.plugin_sections == shipped.plugin_sections


def test_a_config_file_adds_an_agency_to_the_shipped_register(
    tmp_path: Path, shipped_defaults: Path
) -> None:
    shipped = load_settings(environ={})
    mine = write_config(
        tmp_path,
        '[kazakhstan.agencies.minhealth]\nnames = { kk = "ДСМ", ru = "Минздрав", en = "Health" }\n'
        'level = "republic"\nkind = "ministry"\n',
    )

    settings = load_settings(config_file=mine, environ={})

    assert set(agencies(settings)) == set(agencies(shipped)) | {"minhealth"}


def test_a_nested_key_in_a_config_file_overlays_one_agency_key_by_key(
    tmp_path: Path, shipped_defaults: Path
) -> None:
    shipped = agencies(load_settings(environ={}))["minedu"]
    mine = write_config(tmp_path, '[kazakhstan.agencies.minedu.names]\nen = "Education"\n')

    agency = agencies(load_settings(config_file=mine, environ={}))["minedu"]

    assert agency["names"]["en"] == "Education"
    assert (agency["names"]["kk"], agency["names"]["ru"], agency["kind"]) == (
        shipped["names"]["kk"],
        shipped["names"]["ru"],
        shipped["kind"],
    )


def test_a_table_marked_replace_replaces_the_shipped_table_whole(
    tmp_path: Path, shipped_defaults: Path
) -> None:
    mine = write_config(
        tmp_path,
        "[kazakhstan.agencies]\n__replace__ = true\n\n"
        '[kazakhstan.agencies.minhealth]\nnames = { kk = "ДСМ", ru = "Минздрав", en = "Health" }\n'
        'level = "republic"\nkind = "ministry"\n',
    )

    settings = load_settings(config_file=mine, environ={})

    assert list(agencies(settings)) == ["minhealth"]
    # The other tables still overlay.
    assert len(settings.plugin_sections["kazakhstan"]["regions"]) > 5


def test_the_environment_replaces_a_table_with_the_marker_in_its_json(
    shipped_defaults: Path,
) -> None:
    register = (
        '{"__replace__": true, "minhealth": {"names": {"kk": "a", "ru": "b", "en": "c"},'
        ' "level": "republic", "kind": "ministry"}}'
    )

    settings = load_settings(environ={"QATYSU_KAZAKHSTAN__AGENCIES": register})

    assert list(agencies(settings)) == ["minhealth"]


def test_the_environment_overlays_both_files(tmp_path: Path, shipped_defaults: Path) -> None:
    mine = write_config(tmp_path, "[server]\nport = 9001\nworkers = 3\n")

    settings = load_settings(config_file=mine, environ={"QATYSU_SERVER__PORT": "9002"})

    assert (settings.server.port, settings.server.workers) == (9002, 3)
    assert agencies(settings)


def test_a_replace_marker_that_is_not_a_boolean_is_refused_naming_it(
    tmp_path: Path, shipped_defaults: Path
) -> None:
    mine = write_config(tmp_path, '[kazakhstan.agencies]\n__replace__ = "yes"\n')

    with pytest.raises(SettingsError, match=r"^agencies\.__replace__ must be true or false$"):
        load_settings(config_file=mine, environ={})
