from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from core.identity import keys as identity_keys
from plugins.consultations.tables import comments
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.consultations import BASE, window
from tests.support.identities import agency, citizen, moderator


async def _list(client, consultation_id, headers=None, **params) -> dict:
    response = await client.get(
        f"{BASE}/{consultation_id}/comments", params=params, headers=headers
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_citizen_comments_on_a_section(client, comment, open_consultation, read) -> None:
    consultation = await open_consultation(client)
    response = await comment(client, consultation["id"], 1, text="Publish the queue.", section=2)
    assert response.status == 201
    body = await response.json()
    assert set(body) == {
        "id",
        "consultation_id",
        "section",
        "parent_id",
        "depth",
        "text",
        "author_name",
        "created_at",
    }
    assert body["consultation_id"] == consultation["id"]
    assert (body["section"], body["parent_id"], body["depth"]) == (2, None, 1)
    assert body["text"] == "Publish the queue."
    assert body["author_name"] == "Aigerim S."
    assert (await read(client, consultation["id"]))["comment_count"] == 1


async def test_a_comment_stores_the_keyed_hash_never_the_iin(
    client, fetch_rows, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    await posted_comment(client, consultation["id"], 7)
    [row] = await fetch_rows(client, sa.select(comments))
    assert row.author_hash == client.app[identity_keys.VERIFIER].citizen_hash(synthetic_iin(7))
    assert synthetic_iin(7) not in " ".join(str(value) for value in row)


async def test_commenting_needs_a_token(client, open_consultation) -> None:
    consultation = await open_consultation(client)
    response = await client.post(f"{BASE}/{consultation['id']}/comments", json={"text": "Hi"})
    assert response.status == 401


@pytest.mark.parametrize("headers", [agency(), moderator()])
async def test_only_citizens_comment(client, headers, open_consultation) -> None:
    consultation = await open_consultation(client)
    response = await client.post(
        f"{BASE}/{consultation['id']}/comments", json={"text": "Hi"}, headers=headers
    )
    assert response.status == 403


async def test_commenting_on_an_unknown_consultation_is_404(client, comment) -> None:
    assert (await comment(client, "nope")).status == 404


@pytest.mark.parametrize("text", ["", "   ", "x" * 5001])
async def test_an_empty_or_too_long_comment_is_422(
    client, text, comment, open_consultation
) -> None:
    consultation = await open_consultation(client)
    response = await comment(client, consultation["id"], text=text)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["text"]


async def test_a_comment_on_a_section_that_does_not_exist_is_422(
    client, comment, open_consultation
) -> None:
    consultation = await open_consultation(client)
    response = await comment(client, consultation["id"], section=4)
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "section", "message": "the draft has no section 4"}
    ]


async def test_a_reply_to_a_comment_of_another_consultation_is_422(
    client, comment, open_consultation, posted_comment
) -> None:
    first = await open_consultation(client)
    second = await open_consultation(client)
    foreign = await posted_comment(client, first["id"])
    response = await comment(client, second["id"], parent_id=foreign["id"])
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "parent_id", "message": "no such comment in this consultation"}
    ]


async def test_a_reply_to_an_unknown_comment_is_422(client, comment, open_consultation) -> None:
    consultation = await open_consultation(client)
    response = await comment(client, consultation["id"], parent_id="0123456789abcdef")
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["parent_id"]


async def test_a_reply_takes_its_parents_section_and_depth(
    client, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    parent = await posted_comment(client, consultation["id"], section=3)
    reply = await posted_comment(client, consultation["id"], 2, parent_id=parent["id"])
    assert (reply["section"], reply["parent_id"], reply["depth"]) == (3, parent["id"], 2)


async def test_a_reply_about_another_section_is_422(
    client, comment, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    parent = await posted_comment(client, consultation["id"], section=3)
    response = await comment(client, consultation["id"], parent_id=parent["id"], section=1)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["section"]


async def test_a_thread_deeper_than_three_is_422(
    client, comment, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    parent_id = None
    for depth in (1, 2, 3):
        posted = await posted_comment(client, consultation["id"], depth, parent_id=parent_id)
        assert posted["depth"] == depth
        parent_id = posted["id"]
    response = await comment(client, consultation["id"], 4, parent_id=parent_id)
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "parent_id", "message": "a thread is at most 3 comments deep"}
    ]


async def test_the_thread_depth_limit_comes_from_config(
    make_client, database_url, comment, open_consultation, posted_comment
) -> None:
    client = await make_client(database_url, consultations={"max_thread_depth": 1})
    consultation = await open_consultation(client)
    parent = await posted_comment(client, consultation["id"])
    response = await comment(client, consultation["id"], 2, parent_id=parent["id"])
    assert response.status == 422


async def test_comments_list_in_thread_order_oldest_first(
    client, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    cid = consultation["id"]
    a = await posted_comment(client, cid, 1, text="A")
    b = await posted_comment(client, cid, 2, text="B")
    a1 = await posted_comment(client, cid, 3, text="A1", parent_id=a["id"])
    a1a = await posted_comment(client, cid, 4, text="A1a", parent_id=a1["id"])
    a2 = await posted_comment(client, cid, 5, text="A2", parent_id=a["id"])
    b1 = await posted_comment(client, cid, 6, text="B1", parent_id=b["id"])
    body = await _list(client, cid)
    assert [(c["text"], c["depth"], c["parent_id"]) for c in body["items"]] == [
        ("A", 1, None),
        ("A1", 2, a["id"]),
        ("A1a", 3, a1["id"]),
        ("A2", 2, a["id"]),
        ("B", 1, None),
        ("B1", 2, b["id"]),
    ]
    assert [c["id"] for c in body["items"]] == [
        a["id"],
        a1["id"],
        a1a["id"],
        a2["id"],
        b["id"],
        b1["id"],
    ]
    assert body["next_cursor"] is None


async def test_comments_page_with_a_cursor(client, open_consultation, posted_comment) -> None:
    consultation = await open_consultation(client)
    posted = [
        (await posted_comment(client, consultation["id"], n, text=f"c{n}"))["id"]
        for n in range(1, 6)
    ]
    first = await _list(client, consultation["id"], limit="2")
    second = await _list(client, consultation["id"], limit="2", cursor=first["next_cursor"])
    third = await _list(client, consultation["id"], limit="2", cursor=second["next_cursor"])
    pages = [first, second, third]
    assert [[c["id"] for c in page["items"]] for page in pages] == [
        posted[0:2],
        posted[2:4],
        posted[4:5],
    ]
    assert third["next_cursor"] is None


async def test_comments_filter_by_section(client, open_consultation, posted_comment) -> None:
    consultation = await open_consultation(client)
    on_two = await posted_comment(client, consultation["id"], 1, section=2)
    await posted_comment(client, consultation["id"], 2, section=1)
    await posted_comment(client, consultation["id"], 3)
    reply = await posted_comment(client, consultation["id"], 4, parent_id=on_two["id"])
    body = await _list(client, consultation["id"], section="2")
    assert [c["id"] for c in body["items"]] == [on_two["id"], reply["id"]]


async def test_listing_comments_of_an_unknown_consultation_is_404(client) -> None:
    response = await client.get(f"{BASE}/nope/comments")
    assert response.status == 404


async def test_comments_before_the_consultation_opens_are_409(
    client, comment, open_consultation
) -> None:
    consultation = await open_consultation(client, **window(opens_in=dt.timedelta(days=1)))
    response = await comment(client, consultation["id"])
    assert response.status == 409
    assert (await response.json())["consultation_status"] == "upcoming"


async def test_comments_after_the_closing_time_are_409(
    client, close_by_deadline, comment, open_consultation
) -> None:
    consultation = await open_consultation(client)
    await close_by_deadline(client, consultation["id"])
    response = await comment(client, consultation["id"])
    assert response.status == 409
    assert (await response.json())["consultation_status"] == "closed"


async def _hide(client, consultation_id, comment_id, headers=None, reason="Insults."):
    return await client.post(
        f"{BASE}/{consultation_id}/comments/{comment_id}/hide",
        json={"reason": reason},
        headers=headers or moderator(),
    )


async def test_a_hidden_comment_leaves_public_lists_but_stays_in_the_database(
    client, fetch_rows, open_consultation, posted_comment, read
) -> None:
    consultation = await open_consultation(client)
    kept = await posted_comment(client, consultation["id"], 1, text="Fine")
    abusive = await posted_comment(client, consultation["id"], 2, text="Abuse")
    response = await _hide(client, consultation["id"], abusive["id"], reason="Insults.")
    assert response.status == 200
    hidden = await response.json()
    assert hidden["id"] == abusive["id"]
    assert hidden["hidden_reason"] == "Insults."
    assert hidden["hidden_at"] is not None
    public = await _list(client, consultation["id"])
    assert [c["id"] for c in public["items"]] == [kept["id"]]
    assert (await read(client, consultation["id"]))["comment_count"] == 1
    [row] = await fetch_rows(client, sa.select(comments).where(comments.c.id == abusive["id"]))
    assert (row.text, row.hidden_reason, row.hidden_by) == ("Abuse", "Insults.", "moderator-1")
    assert row.hidden_at is not None


async def test_a_moderator_lists_hidden_comments_with_the_reason(
    client, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    kept = await posted_comment(client, consultation["id"], 1)
    abusive = await posted_comment(client, consultation["id"], 2)
    await _hide(client, consultation["id"], abusive["id"])
    body = await _list(client, consultation["id"], headers=moderator(), include_hidden="true")
    assert [(c["id"], c["hidden_reason"], c["flagged"]) for c in body["items"]] == [
        (kept["id"], None, False),
        (abusive["id"], "Insults.", False),
    ]


async def test_listing_hidden_comments_needs_a_moderator(client, open_consultation) -> None:
    consultation = await open_consultation(client)
    url = f"{BASE}/{consultation['id']}/comments"
    anonymous = await client.get(url, params={"include_hidden": "true"})
    as_citizen = await client.get(url, params={"include_hidden": "true"}, headers=citizen(1))
    assert (anonymous.status, as_citizen.status) == (401, 403)


async def test_hiding_needs_a_reason(client, open_consultation, posted_comment) -> None:
    consultation = await open_consultation(client)
    posted = await posted_comment(client, consultation["id"])
    response = await _hide(client, consultation["id"], posted["id"], reason="")
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["reason"]


async def test_hiding_twice_is_409(client, open_consultation, posted_comment, read) -> None:
    consultation = await open_consultation(client)
    posted = await posted_comment(client, consultation["id"])
    assert (await _hide(client, consultation["id"], posted["id"])).status == 200
    assert (await _hide(client, consultation["id"], posted["id"])).status == 409
    assert (await read(client, consultation["id"]))["comment_count"] == 0


@pytest.mark.parametrize(("headers", "status"), [(citizen(1), 403), (agency(), 403)])
async def test_only_moderators_hide_comments(
    client, headers, status, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    posted = await posted_comment(client, consultation["id"])
    assert (await _hide(client, consultation["id"], posted["id"], headers=headers)).status == status


async def test_hiding_without_a_token_is_401(client, open_consultation, posted_comment) -> None:
    consultation = await open_consultation(client)
    posted = await posted_comment(client, consultation["id"])
    response = await client.post(
        f"{BASE}/{consultation['id']}/comments/{posted['id']}/hide", json={"reason": "x"}
    )
    assert response.status == 401


async def test_hiding_an_unknown_comment_or_consultation_is_404(
    client, open_consultation, posted_comment
) -> None:
    first = await open_consultation(client)
    second = await open_consultation(client)
    foreign = await posted_comment(client, first["id"])
    assert (await _hide(client, second["id"], foreign["id"])).status == 404
    assert (await _hide(client, first["id"], "0123456789abcdef")).status == 404
    assert (await _hide(client, "nope", foreign["id"])).status == 404


async def test_a_reply_to_a_hidden_comment_is_422(
    client, comment, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    posted = await posted_comment(client, consultation["id"])
    await _hide(client, consultation["id"], posted["id"])
    response = await comment(client, consultation["id"], 2, parent_id=posted["id"])
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "parent_id", "message": "that comment was hidden by a moderator"}
    ]


async def test_a_reply_stays_listed_when_its_parent_is_hidden_later(
    client, open_consultation, posted_comment
) -> None:
    consultation = await open_consultation(client)
    parent = await posted_comment(client, consultation["id"])
    reply = await posted_comment(client, consultation["id"], 2, parent_id=parent["id"])
    await _hide(client, consultation["id"], parent["id"])
    body = await _list(client, consultation["id"])
    assert [(c["id"], c["parent_id"]) for c in body["items"]] == [(reply["id"], parent["id"])]
