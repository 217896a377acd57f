from __future__ import annotations

import pytest

from tests.support.identities import agency, citizen, moderator
from tests.support.metrics import events_emitted

BASE = "/api/v1/information-requests"
ANSWER = {"text": "The schedule is attached.", "language": "en"}
REFUSAL = {"reason": "Personal data is information with limited access.", "language": "ru"}


async def test_the_agency_starts_work_then_answers(client, act, file_request) -> None:
    filed = await file_request(client)
    started = await act(client, filed["id"], "progress")
    assert started.status == 200
    in_progress = await started.json()
    assert in_progress["status"] == "in_progress"
    assert in_progress["started_at"] is not None
    answered = await act(client, filed["id"], "answer", **ANSWER)
    assert answered.status == 200
    body = await answered.json()
    assert body["status"] == "answered"
    assert body["answer"]["text"] == ANSWER["text"]
    assert body["answer"]["language"] == "en"
    assert body["answer"]["answered_at"].endswith("Z")
    assert body["refusal"] is None
    read = await (await client.get(f"{BASE}/{filed['id']}", headers=citizen(1))).json()
    assert read == body
    emitted = events_emitted(client.app)
    assert (
        emitted["information_request.in_progress"],
        emitted["information_request.answered"],
    ) == (1, 1)


async def test_the_agency_may_answer_a_registered_request_straight_away(
    client, act, file_request
) -> None:
    filed = await file_request(client)
    response = await act(client, filed["id"], "answer", text="Yes.", language="kk")
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["started_at"], body["answer"]["language"]) == (
        "answered",
        None,
        "kk",
    )


async def test_a_refusal_carries_its_reason_and_its_language(client, act, file_request) -> None:
    filed = await file_request(client)
    response = await act(client, filed["id"], "refusal", **REFUSAL)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "refused"
    assert body["answer"] is None
    assert (body["refusal"]["reason"], body["refusal"]["language"]) == (REFUSAL["reason"], "ru")
    assert events_emitted(client.app)["information_request.refused"] == 1


@pytest.mark.parametrize(
    ("first", "then", "body"),
    [
        ("progress", "progress", {}),
        ("answer", "progress", {}),
        ("answer", "answer", ANSWER),
        ("answer", "refusal", REFUSAL),
        ("refusal", "refusal", REFUSAL),
        ("refusal", "answer", ANSWER),
    ],
    ids=[
        "progress-twice",
        "progress-after-answer",
        "answer-twice",
        "refuse-after-answer",
        "refuse-twice",
        "answer-after-refusal",
    ],
)
async def test_a_move_from_the_wrong_status_is_409(
    client, first, then, body, act, file_request
) -> None:
    filed = await file_request(client)
    first_body = {"progress": {}, "answer": ANSWER, "refusal": REFUSAL}[first]
    assert (await act(client, filed["id"], first, **first_body)).status == 200
    response = await act(client, filed["id"], then, **body)
    assert response.status == 409
    problem = await response.json()
    expected = {"progress": "in_progress", "answer": "answered", "refusal": "refused"}[first]
    assert problem["request_status"] == expected


@pytest.mark.parametrize("action", ["progress", "answer", "refusal"])
async def test_another_agency_gets_404_for_a_move(client, action: str, act, file_request) -> None:
    filed = await file_request(client)
    body = {"progress": {}, "answer": ANSWER, "refusal": REFUSAL}[action]
    response = await act(client, filed["id"], action, code="astana-akimat", **body)
    assert response.status == 404
    read = await (await client.get(f"{BASE}/{filed['id']}", headers=citizen(1))).json()
    assert read["status"] == "registered"


@pytest.mark.parametrize("action", ["progress", "answer", "refusal"])
async def test_a_move_on_an_unknown_request_is_404(client, action: str, act) -> None:
    body = {"progress": {}, "answer": ANSWER, "refusal": REFUSAL}[action]
    assert (await act(client, "no-such-request", action, **body)).status == 404


@pytest.mark.parametrize("action", ["progress", "answer", "refusal"])
async def test_moves_need_an_agency_token(client, action: str, file_request) -> None:
    filed = await file_request(client)
    url = f"{BASE}/{filed['id']}/{action}"
    body = {"progress": {}, "answer": ANSWER, "refusal": REFUSAL}[action]
    assert (await client.post(url, json=body)).status == 401
    assert (await client.post(url, json=body, headers=citizen(1))).status == 403
    assert (await client.post(url, json=body, headers=moderator())).status == 403


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("refusal", {"language": "ru"}, "reason"),
        ("refusal", {"reason": "  ", "language": "ru"}, "reason"),
        ("refusal", {"reason": "r" * 5_001, "language": "ru"}, "reason"),
        ("refusal", {"reason": "No.", "language": "xx"}, "language"),
        ("answer", {"language": "en"}, "text"),
        ("answer", {"text": "Yes.", "language": "fr"}, "language"),
        ("answer", {"text": "a" * 20_001, "language": "en"}, "text"),
        ("answer", {"text": "Yes."}, "language"),
    ],
    ids=[
        "refusal-without-reason",
        "refusal-blank-reason",
        "refusal-long-reason",
        "refusal-bad-language",
        "answer-without-text",
        "answer-bad-language",
        "answer-long-text",
        "answer-without-language",
    ],
)
async def test_an_invalid_reply_is_422_and_changes_nothing(
    client, action, body, field, act, file_request
) -> None:
    filed = await file_request(client)
    response = await act(client, filed["id"], action, **body)
    assert response.status == 422
    assert [error["field"] for error in (await response.json())["errors"]] == [field]
    read = await (await client.get(f"{BASE}/{filed['id']}", headers=agency())).json()
    assert read["status"] == "registered"
