"""The jurisdiction contract: exactly one plugin provides it, and core and a channel run on any
country that does, Kazakhstan's plugin not even imported."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.host.app import create_app
from core.identity import keys as identity_keys
from core.identity.jurisdiction import add_months
from core.plugin_host.plugins import PluginHost
from core.settings import SettingsError
from tests.support.freedonia import Freedonia, FreedoniaPlugin
from tests.support.services import REPO_ROOT
from tests.support.stub_country import REQUEST, file_and_read, freedonian_settings


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def test_core_and_the_information_channel_run_on_a_fake_country(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    app = create_app(freedonian_settings(tmp_path), extra_plugins=(FreedoniaPlugin(),))
    client = await aiohttp_client(app)

    seen = await file_and_read(client)

    assert isinstance(client.app[identity_keys.JURISDICTION], Freedonia)
    assert (seen["filed"], seen["read"]) == (201, 200)
    assert seen["read_body"] == seen["filed_body"]
    filed = seen["filed_body"]
    assert {key: filed[key] for key in REQUEST} == REQUEST
    # Fifteen working days by Freedonia's calendar: Monday to Friday, no holidays, in UTC.
    filed_at = dt.datetime.fromisoformat(filed["filed_at"])
    assert filed["due_at"] == _iso(Freedonia().add_working_days(filed_at, 15))
    assert seen["kazakh_citizen"] == 401
    assert seen["kazakh_citizen_detail"] == (
        "the token's subject is not a Freedonian identifier: "
        "a Freedonian identifier is FD- and six digits"
    )
    assert seen["agencies_route"] == 404
    assert seen["unknown_agency"] == 401


def test_a_fake_country_runs_without_importing_kazakhstans_plugin(tmp_path: Path) -> None:
    # A fresh process: this one has imported the Kazakh plugin for other tests.
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.stub_country", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["filed"], seen["read"], seen["kazakh_citizen"]) == (201, 200, 401)
    assert seen["kazakh_modules"] == []


def test_without_a_jurisdiction_plugin_the_server_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        create_app(freedonian_settings(tmp_path))

    assert str(caught.value) == (
        "exactly one jurisdiction plugin (implementing qatysu_jurisdiction) must be loaded; "
        "found 0: none"
    )


def test_two_jurisdiction_plugins_stop_the_server_naming_them(make_settings: Any) -> None:
    # Kazakhstan's plugin is loaded by default; Freedonia's would be a second.
    with pytest.raises(SettingsError) as caught:
        create_app(make_settings(), extra_plugins=(FreedoniaPlugin(),))

    message = str(caught.value)
    assert message.startswith(
        "exactly one jurisdiction plugin (implementing qatysu_jurisdiction) must be loaded; "
        "found 2: "
    )
    assert "plugins.kazakhstan" in message


def test_the_jurisdiction_is_built_once_per_plugin_host(tmp_path: Path) -> None:
    host = PluginHost(freedonian_settings(tmp_path), extra_plugins=(FreedoniaPlugin(),))

    assert host.jurisdiction() is host.jurisdiction()


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2027, 3, 1), 2, dt.date(2027, 5, 1)),
        (dt.date(2027, 12, 31), 2, dt.date(2028, 2, 29)),
        (dt.date(2027, 1, 31), 1, dt.date(2027, 2, 28)),
        (dt.date(2027, 11, 15), 2, dt.date(2028, 1, 15)),
        (dt.date(2026, 8, 31), 6, dt.date(2027, 2, 28)),
        (dt.date(2027, 8, 31), 6, dt.date(2028, 2, 29)),
        (dt.date(2026, 12, 31), 6, dt.date(2027, 6, 30)),
        (dt.date(2026, 7, 1), 18, dt.date(2028, 1, 1)),
    ],
)
def test_months_count_to_the_same_day_or_the_end_of_a_shorter_month(
    day: dt.date, months: int, expected: dt.date
) -> None:
    assert add_months(day, months) == expected
