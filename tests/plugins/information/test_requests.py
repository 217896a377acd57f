from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.identity import keys as identity_keys
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.moderation import ModerationResult, TextSubmission, Verdict
from tests.support.identities import agency, auth, citizen, moderator, operator, token
from tests.support.information import REQUEST
from tests.support.metrics import events_emitted

BASE = "/api/v1/information-requests"
ALMATY = ZoneInfo("Asia/Almaty")


async def test_a_citizen_files_a_request_that_is_registered_and_private_by_default(
    client,
) -> None:
    response = await client.post(BASE, json=REQUEST, headers=citizen(1, name="Aigerim Sadykova"))
    assert response.status == 201
    filed = await response.json()
    assert response.headers["Location"] == f"{BASE}/{filed['id']}"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert {k: filed[k] for k in ("agency", "subject", "text", "language")} == REQUEST
    assert filed["status"] == "registered"
    assert filed["public"] is False
    assert filed["overdue"] is False
    assert filed["requester_name"] == "Aigerim Sadykova"
    assert (filed["started_at"], filed["answer"], filed["refusal"]) == (None, None, None)
    assert "requester_hash" not in filed
    assert events_emitted(client.app)["information_request.filed"] == 1


async def test_the_due_date_skips_configured_holidays(
    make_client, database_url: str, file_request
) -> None:
    today = dt.datetime.now(ALMATY).date()
    client = await make_client(
        database_url,
        information={"answer_term": {"days": 3, "source": "a test figure"}},
        kazakhstan={
            "calendar": {
                "weekend": [],
                "holidays": [str(today + dt.timedelta(days=1)), str(today + dt.timedelta(days=2))],
            }
        },
    )
    filed = await file_request(client)
    # Filed today: days +1 and +2 are holidays, +3, +4 and +5 are the three working days.
    # (Filed just after midnight, +2 is the only holiday left and the term still ends on +5.)
    due = dt.datetime.combine(today + dt.timedelta(days=5), dt.time(23, 59, 59), tzinfo=ALMATY)
    assert filed["due_at"] == due.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def test_the_due_date_skips_weekends_and_holidays(
    make_client, database_url: str, file_request
) -> None:
    today = dt.datetime.now(ALMATY).date()
    after = [today + dt.timedelta(days=n) for n in range(6)]
    client = await make_client(
        database_url,
        information={"answer_term": {"days": 2, "source": "a test figure"}},
        kazakhstan={
            "calendar": {
                "weekend": [after[1].weekday(), after[2].weekday()],
                "holidays": [str(after[3])],
            }
        },
    )
    filed = await file_request(client)
    # +1 and +2 fall on weekend days, +3 is a holiday: +4 and +5 are the two working days.
    due = dt.datetime.combine(after[5], dt.time(23, 59, 59), tzinfo=ALMATY)
    assert filed["due_at"] == due.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def test_the_default_term_is_fifteen_working_days(client, file_request) -> None:
    filed = await file_request(client)
    calendar = client.app[identity_keys.JURISDICTION]
    filed_at = dt.datetime.fromisoformat(filed["filed_at"])
    due_at = dt.datetime.fromisoformat(filed["due_at"])
    assert due_at == calendar.add_working_days(filed_at, 15)
    assert due_at.astimezone(ALMATY).time() == dt.time(23, 59, 59)


async def test_a_term_in_calendar_days_that_ends_on_a_day_off_ends_on_the_next_working_day(
    make_client, database_url: str, file_request
) -> None:
    today = dt.datetime.now(ALMATY).date()
    after = [today + dt.timedelta(days=n) for n in range(6)]
    client = await make_client(
        database_url,
        information={"answer_term": {"days": 2, "unit": "calendar", "source": "a test figure"}},
        kazakhstan={"calendar": {"weekend": [after[2].weekday()], "holidays": [str(after[3])]}},
    )
    filed = await file_request(client)
    # Two calendar days end on +2, a weekend day; +3 is a holiday: the term ends on +4.
    due = dt.datetime.combine(after[4], dt.time(23, 59, 59), tzinfo=ALMATY)
    assert filed["due_at"] == due.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def test_filing_needs_a_token(client) -> None:
    assert (await client.post(BASE, json=REQUEST)).status == 401


@pytest.mark.parametrize(
    "headers", [agency(), moderator(), operator()], ids=["agency", "moderator", "operator"]
)
async def test_only_citizens_file_requests(client, headers: dict[str, str]) -> None:
    assert (await client.post(BASE, json=REQUEST, headers=headers)).status == 403


INVALID_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("bad-language", {**REQUEST, "language": "uz"}, "language"),
    ("empty-subject", {**REQUEST, "subject": ""}, "subject"),
    ("long-subject", {**REQUEST, "subject": "s" * 301}, "subject"),
    ("long-text", {**REQUEST, "text": "t" * 10_001}, "text"),
    ("missing-agency", {k: v for k, v in REQUEST.items() if k != "agency"}, "agency"),
    ("unregistered-agency", {**REQUEST, "agency": "no-such-agency"}, "agency"),
    ("public-not-bool", {**REQUEST, "public": "perhaps"}, "public"),
    ("unknown-field", {**REQUEST, "status": "answered"}, "status"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [(b, f) for _, b, f in INVALID_REQUESTS],
    ids=[name for name, _, _ in INVALID_REQUESTS],
)
async def test_an_invalid_request_is_422_naming_the_field(
    client, body: dict[str, Any], field: str
) -> None:
    response = await client.post(BASE, json=body, headers=citizen(1))
    assert response.status == 422
    assert [error["field"] for error in (await response.json())["errors"]] == [field]


class RejectSpam:
    @hookimpl
    def qatysu_moderate_text(self, submission: TextSubmission) -> ModerationResult | None:
        if "spam" in submission.text:
            return ModerationResult(verdict=Verdict.REJECT, reason="looks like spam")
        return None


async def test_moderation_can_reject_a_request_text(make_client, database_url: str) -> None:
    client = await make_client(database_url, extra_plugins=(RejectSpam(),))
    response = await client.post(BASE, json={**REQUEST, "text": "buy spam now"}, headers=citizen(1))
    assert response.status == 422
    assert (await response.json())["errors"] == [{"field": "text", "message": "looks like spam"}]
    mine = await (await client.get(BASE, params={"mine": "true"}, headers=citizen(1))).json()
    assert mine["items"] == []


# --- who may read ---------------------------------------------------------------------------


async def test_the_requester_and_the_agency_asked_read_a_request(client, file_request) -> None:
    filed = await file_request(client, 1)
    for headers in (citizen(1), agency("almaty-akimat")):
        response = await client.get(f"{BASE}/{filed['id']}", headers=headers)
        assert response.status == 200
        assert response.headers["Cache-Control"] == "private, no-store"
        assert await response.json() == filed


@pytest.mark.parametrize(
    "headers",
    [
        citizen(2),
        agency("astana-akimat"),
        moderator(),
        operator(),
        {},
    ],
    ids=["another-citizen", "another-agency", "moderator", "operator", "anonymous"],
)
async def test_anyone_else_gets_404_for_a_request(
    client, headers: dict[str, str], file_request
) -> None:
    filed = await file_request(client, 1)
    response = await client.get(f"{BASE}/{filed['id']}", headers=headers)
    assert response.status == 404
    assert await response.json() == {
        "type": "/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "no such information request",
    }


async def test_a_public_request_is_still_private_at_its_own_route(client, file_request) -> None:
    filed = await file_request(client, 1, public=True)
    assert (await client.get(f"{BASE}/{filed['id']}", headers=citizen(2))).status == 404
    assert (await client.get(f"{BASE}/public/{filed['id']}")).status == 200


async def test_an_unknown_request_is_404(client) -> None:
    assert (await client.get(f"{BASE}/no-such-request", headers=citizen(1))).status == 404


async def test_a_bad_token_is_401_even_where_strangers_get_404(client, file_request) -> None:
    filed = await file_request(client, 1)
    response = await client.get(f"{BASE}/{filed['id']}", headers=auth("not-a-jwt"))
    assert response.status == 401


async def test_an_agency_token_for_another_agency_sees_nothing_of_it(client, file_request) -> None:
    filed = await file_request(client, 1, agency="almaty-akimat")
    other = auth(token("agency", "official-almaty-akimat", agency="astana-akimat"))
    assert (await client.get(f"{BASE}/{filed['id']}", headers=other)).status == 404
