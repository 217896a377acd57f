"""Every move of the petition lifecycle, with the deadlines each one sets."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from core.http import keys as http_keys
from core.plugin_host import keys as plugin_host_keys
from plugins.petitions.collection import add_months
from plugins.petitions.sweeper import expire_overdue
from plugins.petitions.tables import petitions
from tests.support.identities import agency, citizen
from tests.support.petitions import (
    ALMATY,
    BASE,
    CO_SIGNER_MINIMUM,
    PETITION,
    SMALL_FIGURES,
    SMALL_THRESHOLDS,
    THRESHOLD,
    EventRecorder,
    parse_time,
    petition_url,
    statutory_deadline,
)
from tests.support.problems import problem


def _a_weekday_soon() -> dt.date:
    """A weekday two to four days ahead: inside any 20-working-day term filed today."""
    day = dt.datetime.now(ALMATY).date() + dt.timedelta(days=2)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


async def test_filing_puts_a_petition_in_moderation_due_twenty_working_days_later_skipping_holidays(
    make_client, database_url
) -> None:
    holiday = _a_weekday_soon()
    client = await make_client(
        database_url, kazakhstan={"calendar": {"holidays": [holiday.isoformat()]}}
    )

    response = await client.post(BASE, json=PETITION, headers=citizen(1))

    assert response.status == 201
    petition = await response.json()
    assert response.headers["Location"] == petition_url(petition["id"])
    created = parse_time(petition["created_at"])
    expected_due = statutory_deadline(created, 20, holidays=[holiday])
    assert expected_due != statutory_deadline(created, 20), "the holiday must fall inside the term"
    assert parse_time(petition["moderation_due_at"]) == expected_due
    assert petition["status"] == "moderation"
    assert petition["moderation_overdue"] is False
    assert petition["signature_count"] == 0
    assert petition["threshold"] == 2500
    assert petition["co_signer_minimum"] == 50
    assert petition["author_name"] == "Aigerim S."
    assert petition["title"] == "Light the footpath along the river"
    assert petition["addressee"] == "almaty-bostandyq-akimat"
    assert "addressee_agency" not in petition
    for unset in (
        "moderation_reason",
        "restricted_until",
        "collection_ends_at",
        "threshold_reached_at",
        "response_due_at",
        "response",
    ):
        assert petition[unset] is None, unset


async def test_approval_restricts_a_petition_for_ten_working_days(
    client, file_petition, moderate
) -> None:
    petition = await file_petition(client)
    before = dt.datetime.now(dt.UTC)
    response = await moderate(client, petition["id"], "approve")
    after = dt.datetime.now(dt.UTC)

    assert response.status == 200
    approved = await response.json()
    assert approved["status"] == "restricted"
    assert approved["moderation_reason"] is None
    assert parse_time(approved["restricted_until"]) in {
        statutory_deadline(before, 10),
        statutory_deadline(after, 10),
    }
    assert approved["collection_ends_at"] is None


@pytest.mark.parametrize("reason", [None, "", "Asks for a referendum"])
async def test_a_rejection_without_a_statutory_reason_code_is_refused(
    client, reason, file_petition, moderate, read_back
) -> None:
    petition = await file_petition(client)

    body = await problem(await moderate(client, petition["id"], "reject", reason), 422)

    assert [e["field"] for e in body["errors"]] == ["reason_code"]
    assert (await read_back(client, petition["id"]))["status"] == "moderation"


@pytest.mark.parametrize("code", ["", "not-a-ground", "Elections"])
async def test_a_rejection_citing_an_unknown_code_is_refused(
    client, code, file_petition, moderate, read_back
) -> None:
    petition = await file_petition(client)

    body = await problem(await moderate(client, petition["id"], "reject", None, code), 422)

    assert [e["field"] for e in body["errors"]] == ["reason_code"]
    assert (await read_back(client, petition["id"]))["status"] == "moderation"


async def test_an_approval_citing_a_ground_is_refused(client, file_petition, moderate) -> None:
    petition = await file_petition(client)

    body = await problem(await moderate(client, petition["id"], "approve", None, "elections"), 422)

    assert [e["field"] for e in body["errors"]] == ["reason_code"]


async def test_a_rejection_shows_its_code_with_labels_in_three_languages(
    client, file_petition, moderate, stored_petition
) -> None:
    petition = await file_petition(client)

    response = await moderate(
        client, petition["id"], "reject", "It asks to move an election date.", "elections"
    )

    assert response.status == 200
    rejected = await response.json()
    assert rejected["status"] == "rejected"
    assert rejected["moderation_reason_code"] == "elections"
    assert rejected["moderation_reason_labels"] == {
        "kk": "Сайлау",
        "ru": "Выборы",
        "en": "Elections",
    }
    assert rejected["moderation_reason"] == "It asks to move an election date."
    assert rejected["restricted_until"] is None
    assert (await stored_petition(client, petition["id"])).closed_at is not None
    author_view = await client.get(petition_url(petition["id"]), headers=citizen(1))
    assert (await author_view.json())["moderation_reason_code"] == "elections"


async def test_reaching_the_co_signer_minimum_makes_a_petition_public(
    make_client, database_url, approved_petition, read_back, sign, sign_by, stored_petition
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await approved_petition(client)

    receipts = await sign_by(client, petition["id"], range(10, 10 + CO_SIGNER_MINIMUM - 1))
    assert [r["status"] for r in receipts] == ["restricted"] * (CO_SIGNER_MINIMUM - 1)
    before = dt.datetime.now(dt.UTC)
    last = await sign(client, petition["id"], 99)

    assert last.status == 201
    assert await last.json() == {
        "petition_id": petition["id"],
        "signature_count": CO_SIGNER_MINIMUM,
        "status": "public",
        "already_signed": False,
    }
    public = await read_back(client, petition["id"])
    assert public["status"] == "public"
    ends = parse_time(public["collection_ends_at"])
    # Six calendar months from the day it went public, to the end of the same-numbered day (or
    # the month's last) in Almaty, moved past any weekend.
    earliest = dt.datetime.combine(
        add_months(before.astimezone(ALMATY).date(), 6), dt.time(23, 59, 59), ALMATY
    )
    assert earliest <= ends <= earliest + dt.timedelta(days=3)
    assert ends.astimezone(ALMATY).weekday() < 5
    assert public["threshold_reached_at"] is None
    assert (await stored_petition(client, petition["id"])).was_public is True


@pytest.mark.parametrize(
    ("addressee", "working_days"),
    [
        ("government", 40),
        ("minedu", 40),
        ("almaty-maslikhat", 20),
        ("karaganda-city-akimat", 20),
        ("almaty-bostandyq-akimat", 20),
    ],
)
async def test_reaching_the_threshold_sends_the_petition_for_an_answer_due_by_level(
    make_client, database_url, addressee, working_days, approved_petition, read_back, sign_by
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await approved_petition(client, addressee=addressee)
    assert petition["threshold"] == THRESHOLD

    receipts = await sign_by(client, petition["id"], range(10, 10 + THRESHOLD))

    assert [r["signature_count"] for r in receipts] == list(range(1, THRESHOLD + 1))
    assert receipts[-1]["status"] == "awaiting_response"
    awaiting = await read_back(client, petition["id"])
    assert awaiting["status"] == "awaiting_response"
    assert awaiting["signature_count"] == THRESHOLD
    reached = parse_time(awaiting["threshold_reached_at"])
    assert parse_time(awaiting["response_due_at"]) == statutory_deadline(reached, working_days)
    assert awaiting["response_overdue"] is False
    assert awaiting["response"] is None


async def test_the_addressed_agency_answer_closes_the_petition_with_the_response(
    make_client, database_url, answer, petition_in, read_back
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, "awaiting_response", addressee="shymkent-akimat")

    response = await answer(
        client, petition["id"], "shymkent-akimat", "Lighting is funded for 2027."
    )

    assert response.status == 200
    answered = await response.json()
    assert answered["status"] == "answered"
    assert answered["response"]["text"] == "Lighting is funded for 2027."
    assert answered["response"]["agency"] == "shymkent-akimat"
    assert parse_time(answered["response"]["responded_at"]) <= dt.datetime.now(dt.UTC)
    assert (await read_back(client, petition["id"]))["response"] == answered["response"]


async def test_a_row_naming_its_agency_in_the_old_addressee_agency_column_is_answered_by_it(
    make_client, database_url, petition_in, execute
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, "awaiting_response", addressee="almaty-akimat")
    # As a row filed before the agency register may be: its agency in addressee_agency.
    await execute(
        client,
        sa.update(petitions)
        .where(petitions.c.id == petition["id"])
        .values(addressee_agency="astana-akimat"),
    )

    url = petition_url(petition["id"], "/response")
    refused = await client.post(url, json={"text": "Done."}, headers=agency("almaty-akimat"))
    answered = await client.post(url, json={"text": "Done."}, headers=agency("astana-akimat"))

    await problem(refused, 403)
    assert answered.status == 200
    assert (await answered.json())["status"] == "answered"


@pytest.mark.parametrize("status", ["restricted", "public"])
async def test_the_sweeper_expires_a_petition_whose_term_ran_out(
    make_client,
    database_url,
    status,
    move_deadlines_to_past,
    petition_in,
    read_back,
    stored_petition,
) -> None:
    recorder = EventRecorder()
    client = await make_client(
        database_url,
        kazakhstan=SMALL_THRESHOLDS,
        petitions=SMALL_FIGURES,
        extra_plugins=(recorder,),
    )
    petition = await petition_in(client, status)
    still_open = await petition_in(client, status)
    await move_deadlines_to_past(client, petition["id"])
    assert (await client.get(petition_url(petition["id"]))).status == 200  # now cached

    expired = await expire_overdue(client.app)
    await client.app[plugin_host_keys.EVENTS].drain()

    assert expired == [petition["id"]]
    assert [e.subject_id for e in recorder.named("petition.expired")] == [petition["id"]]
    assert (await (await client.get(petition_url(petition["id"]))).json())["status"] == "expired"
    assert (await stored_petition(client, petition["id"])).closed_at is not None
    assert (await read_back(client, still_open["id"]))["status"] == status
    assert await expire_overdue(client.app) == []


@pytest.mark.parametrize("status", ["restricted", "public"])
async def test_signing_after_the_term_is_refused_before_the_sweeper_runs(
    make_client, database_url, status, move_deadlines_to_past, petition_in, sign, stored_petition
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, status)
    count = petition["signature_count"]
    await move_deadlines_to_past(client, petition["id"])

    body = await problem(await sign(client, petition["id"], 77), 409)

    assert body["petition_status"] == status
    stored = await stored_petition(client, petition["id"])
    assert stored.status == status
    assert stored.signature_count == count


async def test_the_sweeper_leaves_petitions_that_are_not_collecting(
    make_client, database_url, move_deadlines_to_past, petition_in, stored_petition
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    ids = {
        status: (await petition_in(client, status))["id"]
        for status in ("moderation", "rejected", "awaiting_response", "answered")
    }
    for petition_id in ids.values():
        await move_deadlines_to_past(client, petition_id)

    assert await expire_overdue(client.app) == []

    for status, petition_id in ids.items():
        assert (await stored_petition(client, petition_id)).status == status


async def test_a_moderation_past_its_due_date_reads_as_overdue(
    client, execute, file_petition, moderate, read_back
) -> None:
    petition = await file_petition(client)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    await execute(
        client,
        sa.update(petitions).where(petitions.c.id == petition["id"]).values(moderation_due_at=past),
    )
    client.app[http_keys.CACHE].invalidate(f"petitions:{petition['id']}")

    overdue = await read_back(client, petition["id"])
    approved = await (await moderate(client, petition["id"], "approve")).json()

    assert overdue["moderation_overdue"] is True
    assert overdue["status"] == "moderation"
    assert approved["moderation_overdue"] is False


async def test_an_answer_past_its_due_date_reads_as_overdue_until_answered(
    make_client, database_url, answer, execute, petition_in, read_back
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, "awaiting_response")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    await execute(
        client,
        sa.update(petitions).where(petitions.c.id == petition["id"]).values(response_due_at=past),
    )
    client.app[http_keys.CACHE].invalidate(f"petitions:{petition['id']}")

    overdue = await read_back(client, petition["id"])
    answered = await (await answer(client, petition["id"])).json()

    assert petition["response_overdue"] is False
    assert overdue["response_overdue"] is True
    assert answered["response_overdue"] is False
