"""Who may see what: private statuses, direct-link petitions, signer names, and raw IINs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.host.app import create_app
from core.http.accesslog import AccessLogger
from core.identity.national_id import national_id_hash
from core.storage import keys as storage_keys
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.identities import IIN_SECRET, agency, citizen, moderator
from tests.support.petitions import BASE, PETITION, SMALL_FIGURES, SMALL_THRESHOLDS, petition_url
from tests.support.problems import problem


@pytest.mark.parametrize("status", ["moderation", "rejected"])
async def test_an_unpublished_petition_is_404_to_the_public_and_other_citizens(
    make_client, database_url, status, petition_in
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, status)

    for headers in ({}, citizen(2), agency()):
        await problem(await client.get(petition_url(petition["id"]), headers=headers), 404)
        await problem(
            await client.get(petition_url(petition["id"], "/signatures"), headers=headers), 404
        )


@pytest.mark.parametrize("status", ["moderation", "rejected"])
async def test_an_unpublished_petition_is_visible_to_its_author_and_moderators_and_never_cached(
    make_client, database_url, status, petition_in
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, status)

    for headers in (citizen(1), moderator()):
        response = await client.get(petition_url(petition["id"]), headers=headers)
        assert response.status == 200
        assert (await response.json())["status"] == status
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "ETag" not in response.headers


async def test_a_restricted_petition_is_readable_by_its_link_but_not_listed(
    client, approved_petition
) -> None:
    petition = await approved_petition(client)

    response = await client.get(petition_url(petition["id"]))
    assert response.status == 200
    assert (await response.json())["status"] == "restricted"
    signers = await client.get(petition_url(petition["id"], "/signatures"))
    assert signers.status == 200
    listed = await client.get(BASE)
    assert (await listed.json())["items"] == []


async def test_the_public_list_shows_only_public_awaiting_answered_and_expired_petitions(
    make_client, database_url, petition_in
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    ids = {
        status: (await petition_in(client, status))["id"]
        for status in (
            "moderation",
            "rejected",
            "restricted",
            "public",
            "awaiting_response",
            "answered",
            "expired",
        )
    }

    for headers in ({}, citizen(1), moderator()):
        listed = await (await client.get(BASE, headers=headers)).json()
        assert {item["id"]: item["status"] for item in listed["items"]} == {
            ids[s]: s for s in ("public", "awaiting_response", "answered", "expired")
        }


@pytest.mark.parametrize("status", ["moderation", "rejected", "restricted"])
async def test_listing_an_unlisted_status_is_for_moderators_only(
    make_client, database_url, status, petition_in
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, status)

    for headers in ({}, citizen(1), agency()):
        await problem(await client.get(BASE, params={"status": status}, headers=headers), 403)
    response = await client.get(BASE, params={"status": status}, headers=moderator())
    assert response.status == 200
    assert [item["id"] for item in (await response.json())["items"]] == [petition["id"]]


async def test_the_signer_list_shows_first_name_and_initial_only(
    client, approved_petition, sign
) -> None:
    petition = await approved_petition(client)
    await sign(client, petition["id"], 11)
    await client.post(
        petition_url(petition["id"], "/signatures"),
        headers=citizen(12, name="Nurlan Abdulla-Uly Bekov"),
    )
    await client.post(petition_url(petition["id"], "/signatures"), headers=citizen(13, name="Dana"))
    await client.post(petition_url(petition["id"], "/signatures"), headers=citizen(14, name=""))

    response = await client.get(petition_url(petition["id"], "/signatures"))

    assert response.status == 200
    page = await response.json()
    assert page["next_cursor"] is None
    assert [item["name"] for item in page["items"]] == [
        "Aigerim S.",
        "Nurlan B.",
        "Dana",
        "Anonymous",
    ]
    assert all(set(item) == {"name", "signed_at"} for item in page["items"])
    assert "Sadykova" not in await response.text()


async def test_the_signer_list_pages_through_every_signer_once(client, approved_petition) -> None:
    petition = await approved_petition(client)
    for n in range(20, 25):
        await client.post(
            petition_url(petition["id"], "/signatures"),
            headers=citizen(n, name=f"Signer{n} Surname"),
        )

    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await (
            await client.get(petition_url(petition["id"], "/signatures"), params=params)
        ).json()
        assert len(page["items"]) <= 2
        names += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert names == [f"Signer{n} S." for n in range(20, 25)]
    bad = await client.get(petition_url(petition["id"], "/signatures"), params={"cursor": "!!"})
    await problem(bad, 400)


# --- no raw IIN anywhere ---------------------------------------------------------------------


async def _every_stored_value(app: Any) -> list[str]:
    """Every non-null value of every column of every table, as text."""

    def reflect(sync_conn: Any) -> sa.MetaData:
        metadata = sa.MetaData()
        metadata.reflect(sync_conn)
        return metadata

    values: list[str] = []
    async with app[storage_keys.DATABASE].read() as conn:
        metadata = await conn.run_sync(reflect)
        assert {"petitions", "petition_signatures"} <= set(metadata.tables)
        for table in metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                values += [str(value) for value in row if value is not None]
    return values


def _database_files_holding(directory: Path, needles: list[str]) -> dict[str, list[str]]:
    """For each SQLite file (database and write-ahead log), the needles found in its bytes."""
    found = {}
    for path in directory.iterdir():
        if path.name.startswith("qatysu.db") and not path.name.endswith("-shm"):
            content = path.read_bytes()
            found[path.name] = [needle for needle in needles if needle.encode() in content]
    return found


async def test_no_raw_iin_reaches_the_database_or_the_logs(
    make_settings,
    aiohttp_server,
    aiohttp_client,
    database_url,
    caplog,
    tmp_path: Path,
    file_petition,
    sign,
    signature_hashes,
) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy logs statements with their parameters only when its own logger asks for them.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    app = create_app(make_settings(database_url, server={"access_log": True}))
    server = await aiohttp_server(
        app, access_log=logging.getLogger("qatysu.access"), access_log_class=AccessLogger
    )
    client = await aiohttp_client(server)
    author, signers = 31, [32, 33, 34]
    raw_iins = [synthetic_iin(n) for n in (author, *signers)]

    petition = await file_petition(client, author=author)
    await problem(await sign(client, petition["id"], signers[0]), 404)
    await client.post(
        petition_url(petition["id"], "/moderation"),
        json={"decision": "approve"},
        headers=moderator(),
    )
    for n in signers:
        assert (await sign(client, petition["id"], n)).status == 201
    assert (await sign(client, petition["id"], signers[0])).status == 200
    await client.post(BASE, json={**PETITION, "title": "short"}, headers=citizen(author))
    await client.get(petition_url(petition["id"], "/signatures"))
    await client.get(petition_url(petition["id"]), headers=citizen(author))

    stored = "\n".join(await _every_stored_value(client.app))
    assert [iin for iin in raw_iins if iin in stored] == []
    secret = IIN_SECRET.encode()
    assert sorted(await signature_hashes(client, petition["id"])) == sorted(
        national_id_hash(synthetic_iin(n), secret) for n in signers
    )
    assert national_id_hash(synthetic_iin(author), secret) in stored
    if database_url.startswith("sqlite"):
        found = _database_files_holding(tmp_path, raw_iins)
        assert "qatysu.db" in found
        assert {name: iins for name, iins in found.items() if iins} == {}
    access_lines = [r for r in caplog.records if r.name == "qatysu.access"]
    assert len(access_lines) >= 8
    logged = "\n".join([record.getMessage() for record in caplog.records] + [caplog.text])
    assert [iin for iin in raw_iins if iin in logged] == []
