"""gzip for large JSON answers, as Accept-Encoding allows, with Vary and a weak ETag."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from core.http.compression import accepts_gzip


async def raw_get(client: Any, path: str, **headers: str) -> Any:
    # auto_decompress off: the test reads the bytes on the wire. Read whole here, so that the
    # connection goes back to the pool: the test client does not track a session's responses.
    response = await client.session.get(
        client.make_url(path), headers=headers, auto_decompress=False
    )
    await response.read()
    return response


async def test_a_large_json_answer_is_gzipped_when_the_client_accepts_it(make_client: Any) -> None:
    client = await make_client()
    plain = await raw_get(client, "/openapi.json", **{"Accept-Encoding": "identity"})
    expected = await plain.read()
    response = await raw_get(client, "/openapi.json", **{"Accept-Encoding": "gzip, br"})
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers.getall("Vary")
    body = await response.read()
    assert gzip.decompress(body) == expected
    assert len(body) < len(expected) / 3


async def test_a_large_answer_not_accepting_gzip_is_plain_but_still_varies(
    make_client: Any,
) -> None:
    client = await make_client()
    response = await raw_get(client, "/openapi.json", **{"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in response.headers
    assert "Accept-Encoding" in response.headers.getall("Vary")
    assert orjson.loads(await response.read())["openapi"] == "3.1.0"


async def test_a_small_answer_is_never_compressed(make_client: Any) -> None:
    client = await make_client()
    response = await raw_get(client, "/healthz", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers
    assert "Vary" not in response.headers


async def test_the_size_threshold_is_a_setting(make_client: Any) -> None:
    client = await make_client(server={"compression_min_bytes": 1})
    response = await raw_get(client, "/healthz", **{"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(await response.read())) == {"status": "ok"}


async def test_compression_can_be_turned_off(make_client: Any) -> None:
    client = await make_client(server={"compression": False})
    response = await raw_get(client, "/openapi.json", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers


async def test_a_compressed_answers_etag_is_weak_and_still_matches(
    make_client: Any, approved_petition: Any
) -> None:
    client = await make_client(server={"compression_min_bytes": 1})
    petition = await approved_petition(client)
    path = f"/api/v1/petitions/{petition['id']}"
    response = await raw_get(client, path, **{"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    etag = response.headers["ETag"]
    assert etag.startswith('W/"')
    again = await raw_get(client, path, **{"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status == 304


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*", True),
        ("*;q=0", False),
        ("br, deflate", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_with_its_qualities(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
