"""Every refusal of the petition routes, each a problem+json with the right status."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from core.identity.tokens import mint_token
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.identities import JWT_SECRET, agency, auth, citizen, moderator, operator
from tests.support.petitions import BASE, PETITION, SMALL_FIGURES, SMALL_THRESHOLDS, petition_url
from tests.support.problems import error_fields, problem

UNKNOWN = "no-such-petition-id"


def _expired_citizen_token() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": synthetic_iin(1), "role": "citizen", "iat": now - 7200, "exp": now - 3600}
    return auth(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))


BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "no token": {},
    "not a JWT": auth("not-a-jwt"),
    "another secret": auth(
        mint_token(
            b"another-secret-that-is-long-enough-0123456789", role="citizen", sub=synthetic_iin(1)
        )
    ),
    "expired": _expired_citizen_token(),
    "not a bearer scheme": {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
    "citizen without a valid IIN": auth(
        mint_token(JWT_SECRET.encode(), role="citizen", sub="123456789012")
    ),
    "unknown role": auth(mint_token(JWT_SECRET.encode(), role="mayor", sub="m-1")),
}


# --- 401 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
async def test_filing_without_a_valid_token_is_401(client, credentials) -> None:
    response = await client.post(BASE, json=PETITION, headers=BAD_CREDENTIALS[credentials])

    await problem(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="qatysu"'


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
async def test_signing_without_a_valid_token_is_401(
    client, credentials, approved_petition, stored_petition
) -> None:
    petition = await approved_petition(client)

    response = await client.post(
        petition_url(petition["id"], "/signatures"), headers=BAD_CREDENTIALS[credentials]
    )

    await problem(response, 401)
    assert (await stored_petition(client, petition["id"])).signature_count == 0


# --- 403 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [moderator(), agency(), operator()], ids=["moderator", "agency", "operator"]
)
async def test_only_citizens_file_petitions(client, headers) -> None:
    await problem(await client.post(BASE, json=PETITION, headers=headers), 403)


@pytest.mark.parametrize(
    "headers", [citizen(1), agency(), operator()], ids=["author", "agency", "operator"]
)
async def test_only_moderators_moderate(client, headers, file_petition, read_back) -> None:
    petition = await file_petition(client)

    response = await client.post(
        petition_url(petition["id"], "/moderation"), json={"decision": "approve"}, headers=headers
    )

    await problem(response, 403)
    assert (await read_back(client, petition["id"]))["status"] == "moderation"


@pytest.mark.parametrize(
    "headers", [citizen(1), moderator(), operator()], ids=["citizen", "moderator", "operator"]
)
async def test_only_agencies_answer(
    make_client, database_url, headers, petition_in, read_back
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, "awaiting_response")

    response = await client.post(
        petition_url(petition["id"], "/response"), json={"text": "An answer."}, headers=headers
    )

    await problem(response, 403)
    assert (await read_back(client, petition["id"]))["status"] == "awaiting_response"


@pytest.mark.parametrize(
    "headers", [moderator(), agency(), operator()], ids=["moderator", "agency", "operator"]
)
async def test_only_citizens_sign(client, headers, approved_petition, stored_petition) -> None:
    petition = await approved_petition(client)

    response = await client.post(petition_url(petition["id"], "/signatures"), headers=headers)

    await problem(response, 403)
    assert (await stored_petition(client, petition["id"])).signature_count == 0


async def test_another_agency_cannot_answer_a_petition_addressed_to_one_agency(
    make_client, database_url, answer, petition_in, read_back
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, "awaiting_response", addressee="almaty-akimat")

    await problem(await answer(client, petition["id"], "astana-akimat"), 403)
    await problem(await answer(client, petition["id"], "almaty-bostandyq-akimat"), 403)

    assert (await read_back(client, petition["id"]))["status"] == "awaiting_response"


# --- 404 -------------------------------------------------------------------------------------


async def test_reading_an_unknown_petition_is_404(client) -> None:
    await problem(await client.get(petition_url(UNKNOWN)), 404)
    await problem(await client.get(petition_url(UNKNOWN), headers=moderator()), 404)


async def test_signing_an_unknown_petition_is_404(client, sign) -> None:
    await problem(await sign(client, UNKNOWN, 1), 404)


async def test_moderating_an_unknown_petition_is_404(client, moderate) -> None:
    await problem(await moderate(client, UNKNOWN, "approve"), 404)
    await problem(await moderate(client, UNKNOWN, "reject", "Spam", "form_requirements"), 404)


async def test_answering_an_unknown_petition_is_404(client, answer) -> None:
    await problem(await answer(client, UNKNOWN), 404)


async def test_the_signers_of_an_unknown_petition_are_404(client) -> None:
    await problem(await client.get(petition_url(UNKNOWN, "/signatures")), 404)


async def test_an_unknown_path_is_404(client) -> None:
    await problem(await client.get("/api/v1/petitions/x/nothing-here"), 404)


# --- 409 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["awaiting_response", "answered", "expired"])
async def test_a_petition_that_is_not_collecting_cannot_be_signed(
    make_client, database_url, status, petition_in, sign, stored_petition
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, status)
    count = petition["signature_count"]

    body = await problem(await sign(client, petition["id"], 9_999), 409)

    assert body["petition_status"] == status
    stored = await stored_petition(client, petition["id"])
    assert (stored.status, stored.signature_count) == (status, count)


@pytest.mark.parametrize("status", ["moderation", "rejected"])
async def test_signing_an_unpublished_petition_is_404_as_reading_it_is(
    make_client, database_url, status, petition_in, sign, stored_petition
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, status)

    signed = await problem(await sign(client, petition["id"], 9_999), 404)
    read = await problem(await client.get(f"/api/v1/petitions/{petition['id']}"), 404)

    assert set(signed) == set(read)
    assert (signed["type"], signed["detail"]) == (read["type"], read["detail"])
    assert "petition_status" not in signed
    stored = await stored_petition(client, petition["id"])
    assert (stored.status, stored.signature_count) == (status, petition["signature_count"])


async def test_approving_twice_is_409(client, approved_petition, moderate) -> None:
    petition = await approved_petition(client)

    body = await problem(await moderate(client, petition["id"], "approve"), 409)

    assert body["petition_status"] == "restricted"


async def test_rejecting_an_approved_petition_is_409(
    client, approved_petition, moderate, read_back
) -> None:
    petition = await approved_petition(client)

    body = await problem(
        await moderate(client, petition["id"], "reject", "Changed my mind", "elections"), 409
    )

    assert body["petition_status"] == "restricted"
    assert (await read_back(client, petition["id"]))["status"] == "restricted"


@pytest.mark.parametrize(
    "status", ["moderation", "rejected", "restricted", "public", "answered", "expired"]
)
async def test_answering_a_petition_not_awaiting_an_answer_is_409(
    make_client, database_url, status, answer, petition_in, stored_petition
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, status)

    body = await problem(await answer(client, petition["id"], text="A second answer."), 409)

    assert body["petition_status"] == status
    stored = await stored_petition(client, petition["id"])
    assert stored.status == status
    assert stored.response_text != "A second answer."


# --- 422 ----------------------------------------------------------------------------------


async def test_titles_at_the_length_limits_are_accepted_and_stored_trimmed(
    client, file_petition
) -> None:
    shortest = await file_petition(client, title="  " + "T" * 10 + "  ")
    longest = await file_petition(client, title="L" * 200)

    assert shortest["title"] == "T" * 10
    assert longest["title"] == "L" * 200


INVALID_FILINGS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "title too short": ({**PETITION, "title": "Too short"}, ["title"]),
    "title too long": ({**PETITION, "title": "T" * 201}, ["title"]),
    "title only spaces": ({**PETITION, "title": " " * 20}, ["title"]),
    "text too short": ({**PETITION, "text": "Please fix the lights."}, ["text"]),
    "text too long": ({**PETITION, "text": "x" * 10_001}, ["text"]),
    "unknown addressee": ({**PETITION, "addressee": "ministry_of_magic"}, ["addressee"]),
    "unknown field": ({**PETITION, "colour": "red"}, ["colour"]),
    "title not a string": ({**PETITION, "title": 12345678901}, ["title"]),
    "text null": ({**PETITION, "text": None}, ["text"]),
    "addressee a list": ({**PETITION, "addressee": ["government"]}, ["addressee"]),
    "missing fields": ({}, ["title", "text", "addressee"]),
    "body not an object": ([PETITION], ["(body)"]),
}


@pytest.mark.parametrize("case", list(INVALID_FILINGS), ids=list(INVALID_FILINGS))
async def test_an_invalid_filing_is_422_naming_each_bad_field(client, case) -> None:
    payload, fields = INVALID_FILINGS[case]

    body = await problem(await client.post(BASE, json=payload, headers=citizen(1)), 422)

    assert sorted(error_fields(body)) == sorted(fields)
    assert all(error["message"] for error in body["errors"])
    listed = await client.get(BASE, params={"status": "moderation"}, headers=moderator())
    assert (await listed.json())["items"] == []


@pytest.mark.parametrize(
    "payload",
    [
        {"decision": "maybe"},
        {"decision": None},
        {},
        {"decision": "approve", "extra": 1},
        {"decision": "approve", "reason": "r" * 2001},
    ],
    ids=["unknown decision", "null decision", "no decision", "unknown field", "reason too long"],
)
async def test_an_invalid_moderation_decision_is_422(
    client, payload, file_petition, read_back
) -> None:
    petition = await file_petition(client)

    response = await client.post(
        petition_url(petition["id"], "/moderation"), json=payload, headers=moderator()
    )

    body = await problem(response, 422)
    assert error_fields(body)
    assert (await read_back(client, petition["id"]))["status"] == "moderation"


@pytest.mark.parametrize(
    "payload",
    [{"text": ""}, {}, {"text": "ok", "agency": "other"}],
    ids=["empty text", "no text", "unknown field"],
)
async def test_an_invalid_answer_is_422(
    make_client, database_url, payload, petition_in, read_back
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await petition_in(client, "awaiting_response")

    response = await client.post(
        petition_url(petition["id"], "/response"), json=payload, headers=agency()
    )

    await problem(response, 422)
    assert (await read_back(client, petition["id"]))["status"] == "awaiting_response"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "popularity"}, "sort"),
        ({"status": "pending"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-3"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page": "2"}, "page"),
    ],
)
async def test_an_invalid_list_query_is_422(client, params, field) -> None:
    body = await problem(await client.get(BASE, params=params), 422)

    assert error_fields(body) == [field]


async def test_an_invalid_signer_list_query_is_422(client, approved_petition) -> None:
    petition = await approved_petition(client)

    body = await problem(
        await client.get(petition_url(petition["id"], "/signatures"), params={"limit": "0"}), 422
    )

    assert error_fields(body) == ["limit"]


# --- 400, 413, 415, 405 ------------------------------------------------------------------------


async def test_malformed_json_is_400_with_the_position_of_the_error(client) -> None:
    response = await client.post(
        BASE,
        data=b'{"title": "x",, }',
        headers={
            **citizen(1),
            "Content-Type": "application/json",
        },
    )

    body = await problem(response, 400)
    assert (body["position"], body["line"], body["column"]) == (14, 1, 15)
    assert "line 1 column 15" in body["detail"]


async def test_an_empty_json_body_is_400(client, file_petition) -> None:
    petition = await file_petition(client)

    response = await client.post(
        petition_url(petition["id"], "/moderation"),
        data=b"",
        headers={**moderator(), "Content-Type": "application/json"},
    )

    body = await problem(response, 400)
    assert body["position"] == 0


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_body_that_is_not_json_is_415(client, content_type) -> None:
    response = await client.post(
        BASE,
        data=b'{"title": "x"}',
        headers={
            **citizen(1),
            "Content-Type": content_type,
        },
    )

    await problem(response, 415)


async def test_a_body_without_a_content_type_is_415(client) -> None:
    await problem(await client.post(BASE, headers=citizen(1)), 415)


async def test_a_body_over_the_size_limit_is_413(make_client, database_url) -> None:
    client = await make_client(database_url, server={"max_body_bytes": 2048})
    fits = {**PETITION, "text": "x" * 1500}
    too_big = {**PETITION, "text": "x" * 3000}

    await problem(await client.post(BASE, json=too_big, headers=citizen(1)), 413)

    assert (await client.post(BASE, json=fits, headers=citizen(1))).status == 201


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/petitions/{id}", {"GET"}),
        ("PUT", "/api/v1/petitions/{id}", {"GET"}),
        ("PATCH", "/api/v1/petitions", {"GET", "POST"}),
        ("GET", "/api/v1/petitions/{id}/moderation", {"POST"}),
        ("GET", "/api/v1/petitions/{id}/response", {"POST"}),
        ("DELETE", "/api/v1/petitions/{id}/signatures", {"GET", "POST"}),
    ],
)
async def test_a_wrong_method_is_405_with_the_allowed_methods(
    client, method, path, allowed, approved_petition
) -> None:
    petition = await approved_petition(client)

    response = await client.request(method, path.format(id=petition["id"]), headers=citizen(1))

    await problem(response, 405)
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= allowed
