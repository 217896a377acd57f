"""The region claim: read only when configured, and only as a short string."""

from __future__ import annotations

from typing import Any

import pytest

from core.identity.tokens import TokenKeys, TokenVerifier
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.identities import IIN_SECRET, JWT_SECRET, token
from tests.support.jurisdictions import kazakhstan


def verifier(region_claim: str | None) -> TokenVerifier:
    return TokenVerifier(
        TokenKeys(
            hs256_secret=JWT_SECRET.encode(),
            national_id_secret=IIN_SECRET.encode(),
            region_claim=region_claim,
        ),
        kazakhstan(),
    )


def citizen_token(**claims: Any) -> str:
    return token("citizen", synthetic_iin(1), name="Aigerim Sadykova", **claims)


def test_the_configured_claim_gives_the_identitys_region() -> None:
    identity = verifier("kz_region").verify(citizen_token(kz_region="almaty"))

    assert identity.region == "almaty"


def test_without_a_configured_claim_a_region_in_the_token_is_ignored() -> None:
    identity = verifier(None).verify(citizen_token(kz_region="almaty", region="almaty"))

    assert identity.region is None


@pytest.mark.parametrize("value", [7, "", "x" * 65, ["almaty"]])
def test_a_region_claim_that_is_not_a_short_string_gives_no_region(value: object) -> None:
    identity = verifier("kz_region").verify(citizen_token(kz_region=value))

    assert identity.region is None
