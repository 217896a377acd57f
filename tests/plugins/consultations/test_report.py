from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from core.clock import as_utc
from plugins.consultations.sweeper import record_closed
from plugins.consultations.tables import consultations
from tests.support.consultations import BASE, window
from tests.support.identities import agency, citizen, moderator
from tests.support.metrics import events_emitted


async def _report(client, consultation_id, body=None, headers=None):
    return await client.post(
        f"{BASE}/{consultation_id}/report",
        json=body or {"summary": "We thank everyone."},
        headers=headers or agency(),
    )


async def test_the_owning_agency_publishes_a_report_that_closes_the_consultation(
    client, open_consultation, past_minimum_discussion, posted_comment, read
) -> None:
    consultation = await open_consultation(client)
    await past_minimum_discussion(client, consultation["id"])
    cid = consultation["id"]
    first = await posted_comment(client, cid, 1, text="Publish the queue.")
    second = await posted_comment(client, cid, 2, text="And the free places.")
    body = {
        "summary": "Both proposals are accepted.",
        "answers": [
            {"comment_id": second["id"], "answer": "Accepted in section 3."},
            {"comment_id": first["id"], "answer": "Accepted."},
        ],
    }
    response = await _report(client, cid, body)
    assert response.status == 201
    published = await response.json()
    assert published["status"] == "closed"
    assert published["report"]["summary"] == "Both proposals are accepted."
    assert published["report"]["answers"] == [
        {"comment_id": second["id"], "answer": "Accepted in section 3."},
        {"comment_id": first["id"], "answer": "Accepted."},
    ]
    assert published["report"]["published_at"] == published["report_published_at"]
    assert await read(client, cid) == published


async def test_after_the_report_comments_and_votes_are_409(
    client, comment, open_consultation, past_minimum_discussion, vote
) -> None:
    consultation = await open_consultation(client)
    await past_minimum_discussion(client, consultation["id"])
    assert (await _report(client, consultation["id"])).status == 201
    commented = await comment(client, consultation["id"])
    voted = await vote(client, consultation["id"], 1, "support")
    assert (commented.status, voted.status) == (409, 409)
    assert (await commented.json())["detail"] == (
        "the discussion is closed: the agency has published its report"
    )


async def test_a_second_report_is_409(
    client, open_consultation, past_minimum_discussion, read
) -> None:
    consultation = await open_consultation(client)
    await past_minimum_discussion(client, consultation["id"])
    assert (await _report(client, consultation["id"])).status == 201
    again = await _report(client, consultation["id"], {"summary": "Another."})
    assert again.status == 409
    assert (await read(client, consultation["id"]))["report"]["summary"] == "We thank everyone."


async def test_another_agency_cannot_publish_the_report(client, open_consultation) -> None:
    consultation = await open_consultation(client, "almaty-akimat")
    response = await _report(client, consultation["id"], headers=agency("astana-akimat"))
    assert response.status == 403


@pytest.mark.parametrize("headers", [citizen(1), moderator()])
async def test_only_an_agency_publishes_a_report(client, headers, open_consultation) -> None:
    consultation = await open_consultation(client)
    assert (await _report(client, consultation["id"], headers=headers)).status == 403


async def test_reporting_without_a_token_is_401(client, open_consultation) -> None:
    consultation = await open_consultation(client)
    response = await client.post(f"{BASE}/{consultation['id']}/report", json={"summary": "x"})
    assert response.status == 401


async def test_a_report_on_an_unknown_consultation_is_404(client) -> None:
    assert (await _report(client, "nope")).status == 404


async def test_a_report_answering_a_comment_of_another_consultation_is_422(
    client, open_consultation, past_minimum_discussion, posted_comment, read
) -> None:
    mine = await open_consultation(client)
    await past_minimum_discussion(client, mine["id"])
    other = await open_consultation(client)
    own = await posted_comment(client, mine["id"], 1)
    foreign = await posted_comment(client, other["id"], 2)
    body = {
        "summary": "Done.",
        "answers": [
            {"comment_id": own["id"], "answer": "Yes."},
            {"comment_id": foreign["id"], "answer": "No."},
        ],
    }
    response = await _report(client, mine["id"], body)
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "answers.1.comment_id", "message": "no such comment in this consultation"}
    ]
    assert (await read(client, mine["id"]))["status"] == "open"


async def test_a_report_answering_a_comment_twice_is_422(
    client, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    posted = await posted_comment(client, consultation["id"])
    body = {
        "summary": "Done.",
        "answers": [
            {"comment_id": posted["id"], "answer": "Yes."},
            {"comment_id": posted["id"], "answer": "No."},
        ],
    }
    response = await _report(client, consultation["id"], body)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["answers.1.comment_id"]


async def test_a_report_without_a_summary_is_422(client, open_consultation) -> None:
    consultation = await open_consultation(client)
    response = await _report(client, consultation["id"], {"answers": []})
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["summary"]


async def test_a_report_before_the_discussion_opens_is_409(client, open_consultation) -> None:
    consultation = await open_consultation(client, **window(opens_in=dt.timedelta(days=1)))
    response = await _report(client, consultation["id"])
    assert response.status == 409
    assert (await response.json())["consultation_status"] == "upcoming"


async def test_a_report_after_the_closing_time_is_accepted(
    client, close_by_deadline, open_consultation
) -> None:
    consultation = await open_consultation(client)
    await close_by_deadline(client, consultation["id"])
    response = await _report(client, consultation["id"])
    assert response.status == 201
    assert (await response.json())["report"]["summary"] == "We thank everyone."


async def test_the_report_emits_report_published_and_closed(
    client, open_consultation, past_minimum_discussion
) -> None:
    consultation = await open_consultation(client)
    await past_minimum_discussion(client, consultation["id"])
    await _report(client, consultation["id"])
    assert events_emitted(client.app) == {
        "consultation.opened": 1,
        "consultation.report_published": 1,
        "consultation.closed": 1,
    }


async def test_the_sweeper_announces_a_passed_deadline_once(
    client, close_by_deadline, open_consultation, read
) -> None:
    consultation = await open_consultation(client)
    still_open = await open_consultation(client)
    await close_by_deadline(client, consultation["id"])
    assert await record_closed(client.app) == [consultation["id"]]
    assert await record_closed(client.app) == []
    assert (await _report(client, consultation["id"])).status == 201
    assert events_emitted(client.app)["consultation.closed"] == 1
    assert (await read(client, still_open["id"]))["status"] == "open"


async def test_a_report_before_the_minimum_discussion_is_409_with_the_date_it_may_come(
    client, fetch_rows, open_consultation, read
) -> None:
    consultation = await open_consultation(client)
    response = await _report(client, consultation["id"])
    assert response.status == 409
    body = await response.json()
    stored = await fetch_rows(
        client,
        sa.select(consultations.c.created_at).where(consultations.c.id == consultation["id"]),
    )
    allowed_from = (as_utc(stored[0].created_at) + dt.timedelta(days=10)).isoformat()
    assert body["report_allowed_from"] == allowed_from
    assert body["consultation_status"] == "open"
    assert body["detail"] == (
        "the report closes the discussion, which must last at least 10 days: "
        f"it may be published from {allowed_from}"
    )
    assert (await read(client, consultation["id"]))["status"] == "open"


async def test_a_backdated_opening_does_not_shorten_the_minimum_discussion(
    client, open_consultation
) -> None:
    opened_long_ago = window(opens_in=-dt.timedelta(days=20), days=40)
    consultation = await open_consultation(client, **opened_long_ago)
    response = await _report(client, consultation["id"])
    assert response.status == 409


async def test_a_report_once_the_minimum_discussion_has_passed_is_accepted(
    client, open_consultation, past_minimum_discussion
) -> None:
    consultation = await open_consultation(client)
    await past_minimum_discussion(client, consultation["id"], days=10)
    assert (await _report(client, consultation["id"])).status == 201
