"""HTTP caching of a petition: ETag/304 and Cache-Control for proxies, none for private ones."""

from __future__ import annotations

from tests.support.identities import citizen, moderator
from tests.support.petitions import CO_SIGNER_MINIMUM, SMALL_FIGURES, SMALL_THRESHOLDS, petition_url


async def test_a_public_read_carries_an_etag_and_cache_control_for_proxies(
    client, approved_petition
) -> None:
    petition = await approved_petition(client)

    response = await client.get(petition_url(petition["id"]))

    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=1, stale-while-revalidate=5"
    assert response.headers["ETag"].startswith('"')
    assert (await response.json())["id"] == petition["id"]


async def test_if_none_match_with_the_current_etag_is_304_without_a_body(
    client, approved_petition
) -> None:
    petition = await approved_petition(client)
    etag = (await client.get(petition_url(petition["id"]))).headers["ETag"]

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get(petition_url(petition["id"]), headers={"If-None-Match": header})
        assert response.status == 304, header
        assert await response.read() == b""
        assert response.headers["ETag"] == etag
        assert "stale-while-revalidate" in response.headers["Cache-Control"]


async def test_if_none_match_with_another_etag_is_200(client, approved_petition) -> None:
    petition = await approved_petition(client)

    response = await client.get(petition_url(petition["id"]), headers={"If-None-Match": '"old"'})

    assert response.status == 200
    assert (await response.json())["id"] == petition["id"]


async def test_a_petition_that_changed_has_a_new_etag(
    make_client, database_url, approved_petition
) -> None:
    client = await make_client(database_url, cache={"ttl_seconds": 0})
    petition = await approved_petition(client)
    before = (await client.get(petition_url(petition["id"]))).headers["ETag"]

    await client.post(petition_url(petition["id"], "/signatures"), headers=citizen(5))
    response = await client.get(petition_url(petition["id"]), headers={"If-None-Match": before})

    assert response.status == 200
    assert response.headers["ETag"] != before
    assert (await response.json())["signature_count"] == 1


async def test_a_moderated_petition_is_not_served_from_a_stale_cache(
    client, file_petition, moderate
) -> None:
    petition = await file_petition(client)
    assert (await client.get(petition_url(petition["id"]), headers=moderator())).status == 200

    await moderate(client, petition["id"], "approve")
    response = await client.get(petition_url(petition["id"]))

    assert response.status == 200
    assert (await response.json())["status"] == "restricted"


async def test_a_petition_in_moderation_is_private_and_not_stored(client, file_petition) -> None:
    petition = await file_petition(client)
    etag_probe = await client.get(petition_url(petition["id"]), headers=citizen(1))

    response = await client.get(
        petition_url(petition["id"]), headers={**moderator(), "If-None-Match": "*"}
    )

    assert etag_probe.headers["Cache-Control"] == "private, no-store"
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "ETag" not in response.headers


async def test_a_petition_that_signing_made_public_is_not_served_from_a_stale_cache(
    make_client, database_url, approved_petition, sign_by
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await approved_petition(client)
    assert (await client.get(petition_url(petition["id"]))).status == 200  # now cached

    await sign_by(client, petition["id"], range(10, 10 + CO_SIGNER_MINIMUM))
    response = await client.get(petition_url(petition["id"]))

    document = await response.json()
    assert (document["status"], document["signature_count"]) == ("public", CO_SIGNER_MINIMUM)
