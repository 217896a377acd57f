from __future__ import annotations

import pytest

from core.settings import SettingsError
from plugins.information.demo import seed_information
from tests.support.identities import agency, citizen

POLICIES = {
    ("post", "/api/v1/information"): "critical",
    ("get", "/api/v1/information"): "sheddable",
    ("get", "/api/v1/information/{id}"): "normal",
    ("post", "/api/v1/information-requests"): "critical",
    ("get", "/api/v1/information-requests"): "sheddable",
    ("get", "/api/v1/information-requests/public"): "sheddable",
    ("get", "/api/v1/information-requests/public/{id}"): "normal",
    ("get", "/api/v1/information-requests/{id}"): "normal",
    ("post", "/api/v1/information-requests/{id}/progress"): "critical",
    ("post", "/api/v1/information-requests/{id}/answer"): "critical",
    ("post", "/api/v1/information-requests/{id}/refusal"): "critical",
    ("post", "/api/v1/information-requests/{id}/extension"): "critical",
}


async def test_every_route_is_documented_with_its_priority(client) -> None:
    document = await (await client.get("/openapi.json")).json()
    found = {
        (method, path): operation["x-qatysu-priority"]
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/information")
        for method, operation in operations.items()
    }
    assert found == POLICIES
    publish = document["paths"]["/api/v1/information"]["post"]
    assert publish["x-qatysu-rate"]["policy"] == "information-publish"
    schema = document["components"]["schemas"]["ItemPublish"]
    assert set(schema["properties"]) == {"title", "body", "category", "language", "translations"}


async def test_the_demo_seed_is_idempotent_and_shows_a_public_answer(client) -> None:
    lines = await seed_information(client.app)
    assert lines[0] == "information: 7 demo items and requests seeded"
    assert (await seed_information(client.app))[0] == "information: demo data present"
    items = await (await client.get("/api/v1/information")).json()
    assert sorted(item["language"] for item in items["items"]) == ["en", "kk", "ru"]
    assert [t["language"] for item in items["items"] for t in item["translations"]] == ["en"]
    public = await (await client.get("/api/v1/information-requests/public")).json()
    assert [(r["id"], r["status"]) for r in public["items"]] == [
        ("demo-request-answered", "answered")
    ]
    queue = await (
        await client.get(
            "/api/v1/information-requests", params={"queue": "agency"}, headers=agency()
        )
    ).json()
    assert sorted(r["status"] for r in queue["items"]) == [
        "answered",
        "in_progress",
        "refused",
        "registered",
    ]


async def test_demo_requests_are_private_to_their_requester(client) -> None:
    await seed_information(client.app)
    response = await client.get(
        "/api/v1/information-requests/demo-request-registered", headers=citizen(1)
    )
    assert response.status == 404


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"answer_term": {"days": 0, "source": "a law"}},
            "information.answer_term.days: Input should be greater",
        ),
        ({"default_page_size": 50, "max_page_size": 10}, "default_page_size cannot exceed"),
        ({"answer_days": 15}, "information.answer_days: unknown setting"),
    ],
    ids=["zero-term", "page-sizes", "unknown-key"],
)
async def test_invalid_settings_stop_the_server(make_client, section, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        await make_client(None, information=section)
