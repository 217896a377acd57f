"""Bearer tokens: what is accepted, what is refused with 401, and the hash that replaces an IIN."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.identity.identities import Identity, Role, public_name
from core.identity.national_id import national_id_hash
from core.identity.tokens import (
    TokenKeys,
    TokenVerifier,
    ensure_role,
    role_lifetimes,
    token_keys,
)
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.routing import RoutePolicy, RouteRegistry
from core.settings import SettingsError, build_settings, load_settings
from core.wire.bodies import json_response
from core.wire.errors import Forbidden, Unauthorized
from tests.support.identities import IIN_SECRET, JWT_SECRET, auth, token
from tests.support.jurisdictions import kazakhstan
from tests.support.problems import problem

IIN = "900101300126"


async def whoami(request: web.Request, identity: Identity | None) -> web.Response:
    if identity is None:
        return json_response(None)
    return json_response(
        {
            "subject": identity.subject,
            "role": identity.role.value,
            "agency": identity.agency,
            "name": identity.name,
        }
    )


async def citizens_only(request: web.Request, identity: Identity) -> web.Response:
    return json_response({"subject": identity.subject})


class WhoAmIPlugin:
    """Routes that show the caller's identity as the server sees it."""

    @hookimpl
    def qatysu_add_routes(self, routes: RouteRegistry, app: web.Application) -> None:
        routes.add(
            "GET",
            "/test/whoami",
            whoami,
            name="test.whoami",
            summary="Who am I",
            policy=RoutePolicy(),
        )
        routes.add(
            "GET",
            "/test/citizens-only",
            citizens_only,
            name="test.citizens_only",
            summary="Citizens only",
            policy=RoutePolicy(),
            roles=Role.CITIZEN,
        )


def verifier(**changes: Any) -> TokenVerifier:
    keys: dict[str, Any] = {
        "hs256_secret": JWT_SECRET.encode(),
        "national_id_secret": IIN_SECRET.encode(),
    }
    keys.update(changes)
    return TokenVerifier(TokenKeys(**keys), kazakhstan())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """An ``alg: none`` JWT, built by hand: header, claims, and an empty signature."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def hs256(claims: dict[str, Any], secret: str = JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def hand_signed(
    payload: bytes, *, header: dict[str, Any] | None = None, secret: str = JWT_SECRET
) -> str:
    """An HMAC-SHA256 JWT built byte by byte, to send shapes that PyJWT would never produce."""
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(payload)
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"


def claims_json(**claims: Any) -> bytes:
    return json.dumps(claims).encode()


def tampered(token: str) -> str:
    """The token with its claims swapped for a moderator's, keeping the original signature."""
    head, _, signature = token.split(".")
    forged = b64url(claims_json(sub="moderator-1", role="moderator", iat=issued(), exp=future()))
    return f"{head}.{forged}.{signature}"


def issued() -> int:
    return int(time.time()) - 60


def future() -> int:
    return int(time.time()) + 3600


def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# Each bad token with the exact detail of its 401.
BAD_TOKENS: list[tuple[str, str, str]] = [
    (
        "alg_none",
        unsigned_token({"sub": IIN, "role": "citizen", "iat": issued(), "exp": future()}) + "c2ln",
        "tokens signed with 'none' are not accepted",
    ),
    (
        "alg_none_with_an_empty_signature",
        unsigned_token({"sub": IIN, "role": "citizen", "iat": issued(), "exp": future()}),
        "the bearer token is not a well-formed JWT",
    ),
    (
        "expired",
        hs256({"sub": IIN, "role": "citizen", "exp": int(time.time()) - 3600}),
        "the token has expired",
    ),
    (
        "wrong_key",
        hs256(
            {"sub": IIN, "role": "citizen", "iat": issued(), "exp": future()},
            secret="another-secret-" * 3,
        ),
        "the token's signature does not verify",
    ),
    (
        "missing_exp",
        hs256({"sub": IIN, "role": "citizen"}),
        "the token has no numeric exp claim",
    ),
    (
        "missing_sub",
        hs256({"role": "citizen", "iat": issued(), "exp": future()}),
        "the token has no sub claim",
    ),
    (
        "missing_role",
        hs256({"sub": IIN, "iat": issued(), "exp": future()}),
        "the token has no role claim",
    ),
    (
        "unknown_role",
        hs256({"sub": "x-1", "role": "admin", "iat": issued(), "exp": future()}),
        "the token's role claim 'admin' is not a known role",
    ),
    (
        "citizen_with_invalid_iin",
        hs256({"sub": "900101300123", "role": "citizen", "iat": issued(), "exp": future()}),
        "the token's subject is not a valid IIN: the control digit of the IIN does not match",
    ),
    (
        "citizen_with_non_iin_subject",
        hs256({"sub": "citizen-7", "role": "citizen", "iat": issued(), "exp": future()}),
        "the token's subject is not a valid IIN: an IIN is exactly twelve digits",
    ),
    (
        "agency_without_agency_claim",
        hs256({"sub": "official-1", "role": "agency", "iat": issued(), "exp": future()}),
        "an agency token must carry an agency claim",
    ),
    (
        "agency_with_empty_agency_claim",
        hs256(
            {"sub": "official-1", "role": "agency", "agency": "", "iat": issued(), "exp": future()}
        ),
        "an agency token must carry an agency claim",
    ),
    (
        "empty_subject",
        hs256({"sub": "", "role": "moderator", "iat": issued(), "exp": future()}),
        "the token has no subject",
    ),
    ("not_a_jwt", "not-a-jwt", "the bearer token is not a well-formed JWT"),
    (
        "four_segments",
        hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})
        + ".extra",
        "the bearer token is not a well-formed JWT",
    ),
    (
        "header_not_base64url",
        "e30+."
        + hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()}).split(
            ".", 1
        )[1],
        "the bearer token is not a well-formed JWT",
    ),
    (
        "header_not_an_object",
        b64url(b'["HS256"]') + ".e30.sig",
        "the bearer token is not a well-formed JWT",
    ),
    (
        "hs256_with_an_empty_signature",
        hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()}).rsplit(
            ".", 1
        )[0]
        + ".",
        "the bearer token is not a well-formed JWT",
    ),
    (
        "claims_tampered_after_signing",
        tampered(hs256({"sub": IIN, "role": "citizen", "iat": issued(), "exp": future()})),
        "the token's signature does not verify",
    ),
    (
        "signature_truncated",
        hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})[:-4],
        "the token's signature does not verify",
    ),
    (
        "claims_not_json",
        hand_signed(b"sub=operator-1"),
        "the bearer token is not a well-formed JWT",
    ),
    (
        "claims_not_an_object",
        hand_signed(b'["operator-1", "operator"]'),
        "the bearer token is not a well-formed JWT",
    ),
    (
        "exp_as_a_string",
        hand_signed(
            claims_json(sub="operator-1", role="operator", iat=issued(), exp=str(future()))
        ),
        "the token has no numeric exp claim",
    ),
    (
        "exp_as_a_boolean",
        hand_signed(claims_json(sub="operator-1", role="operator", iat=issued(), exp=True)),
        "the token has no numeric exp claim",
    ),
    (
        "not_valid_before_a_future_time",
        hs256(
            {
                "sub": "operator-1",
                "role": "operator",
                "iat": issued(),
                "exp": future(),
                "nbf": future(),
            }
        ),
        "the token is not valid yet",
    ),
    (
        "iat_as_a_string",
        hand_signed(claims_json(sub="operator-1", role="operator", exp=future(), iat="now")),
        "the token has no numeric iat claim",
    ),
    (
        "subject_as_a_number",
        hand_signed(claims_json(sub=12345, role="operator", iat=issued(), exp=future())),
        "the token's sub claim is not a string",
    ),
    (
        "alg_written_in_lower_case",
        hand_signed(
            claims_json(sub="operator-1", role="operator", iat=issued(), exp=future()),
            header={"alg": "hs256", "typ": "JWT"},
        ),
        "tokens signed with 'hs256' are not accepted",
    ),
    (
        "alg_hs384",
        jwt.encode(
            {"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()},
            "k" * 64,
            algorithm="HS384",
        ),
        "tokens signed with 'HS384' are not accepted",
    ),
    (
        "no_alg",
        hand_signed(
            claims_json(sub="operator-1", role="operator", iat=issued(), exp=future()),
            header={"typ": "JWT"},
        ),
        "tokens signed with None are not accepted",
    ),
]


def test_a_valid_citizen_token_gives_an_identity_with_the_hashed_iin() -> None:
    identity = verifier().verify(
        hs256(
            {
                "sub": IIN,
                "role": "citizen",
                "iat": issued(),
                "exp": future(),
                "name": "Aigerim Sadykova",
            }
        )
    )
    assert identity == Identity(
        subject=national_id_hash(IIN, IIN_SECRET.encode()),
        role=Role.CITIZEN,
        name="Aigerim Sadykova",
    )
    assert IIN not in identity.subject


def test_an_official_token_keeps_its_subject_and_agency() -> None:
    identity = verifier().verify(
        hs256(
            {
                "sub": "official-9",
                "role": "agency",
                "agency": "almaty-akimat",
                "iat": issued(),
                "exp": future(),
            }
        )
    )
    assert identity == Identity(subject="official-9", role=Role.AGENCY, agency="almaty-akimat")


def test_an_expired_token_within_the_leeway_is_accepted() -> None:
    identity = verifier(leeway=30.0).verify(
        hs256(
            {
                "sub": "moderator-1",
                "role": "moderator",
                "iat": int(time.time()) - 3600,
                "exp": int(time.time()) - 5,
            }
        )
    )
    assert identity.role is Role.MODERATOR


def test_a_hand_built_hs256_token_of_the_accepted_shape_verifies() -> None:
    identity = verifier().verify(
        hand_signed(
            claims_json(sub="operator-1", role="operator", exp=future(), iat=issued() + 0.5)
        )
    )
    assert identity == Identity(subject="operator-1", role=Role.OPERATOR)


def test_a_token_valid_from_now_within_the_leeway_is_accepted() -> None:
    nbf = int(time.time()) + 5
    identity = verifier(leeway=30.0).verify(
        hs256(
            {"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future(), "nbf": nbf}
        )
    )
    assert identity.role is Role.OPERATOR


def test_non_string_optional_claims_are_dropped() -> None:
    identity = verifier().verify(
        hs256(
            {
                "sub": "operator-1",
                "role": "operator",
                "iat": issued(),
                "exp": future(),
                "name": 42,
                "agency": ["x"],
            }
        )
    )
    assert (identity.name, identity.agency) == (None, None)


@pytest.mark.parametrize(("case", "bearer", "detail"), BAD_TOKENS, ids=[c[0] for c in BAD_TOKENS])
def test_a_bad_token_is_refused_with_the_reason(case: str, bearer: str, detail: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(bearer)
    assert caught.value.detail == detail


@pytest.mark.parametrize(("case", "bearer", "detail"), BAD_TOKENS, ids=[c[0] for c in BAD_TOKENS])
async def test_a_bad_token_is_a_401_problem_over_http(
    make_client: Any, case: str, bearer: str, detail: str
) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    response = await client.get("/test/whoami", headers=auth(bearer))
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="qatysu"'
    assert await response.json() == {
        "type": "/problems/unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "detail": detail,
    }


async def test_a_bad_token_is_refused_even_on_a_public_route(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/api/v1/petitions", headers=auth("not-a-jwt"))
    assert response.status == 401


async def test_a_valid_citizen_token_over_http_gives_the_hashed_subject(make_client: Any) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    response = await client.get(
        "/test/whoami", headers=auth(token("citizen", IIN, name="Aigerim Sadykova"))
    )
    assert response.status == 200
    assert await response.json() == {
        "subject": national_id_hash(IIN, IIN_SECRET.encode()),
        "role": "citizen",
        "agency": None,
        "name": "Aigerim Sadykova",
    }


async def test_no_token_is_anonymous_on_a_public_route(make_client: Any) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    response = await client.get("/test/whoami")
    assert response.status == 200
    assert await response.json() is None


async def test_no_token_on_a_route_with_roles_is_401(make_client: Any) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    response = await client.get("/test/citizens-only")
    assert response.status == 401
    assert (await response.json())["detail"] == "this route needs a bearer token"


async def test_the_wrong_role_on_a_route_with_roles_is_403(make_client: Any) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    response = await client.get(
        "/test/citizens-only", headers=auth(token("moderator", "moderator-1"))
    )
    assert response.status == 403
    assert response.content_type == "application/problem+json"
    assert await response.json() == {
        "type": "/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "this route is for citizen; the token's role is moderator",
    }


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc.def.ghi", "bearer"],
)
async def test_a_malformed_authorization_header_is_401(make_client: Any, header: str) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    response = await client.get("/test/whoami", headers={"Authorization": header})
    assert response.status == 401
    assert (await response.json())["detail"] == "the Authorization header must be 'Bearer <token>'"


async def test_the_bearer_scheme_is_case_insensitive(make_client: Any) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    bearer = token("operator", "operator-1")
    response = await client.get("/test/whoami", headers={"Authorization": f"bearer {bearer}"})
    assert response.status == 200
    assert (await response.json())["role"] == "operator"


def rs256_settings(tmp_path: Path, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    path = tmp_path / "jwt-public.pem"
    path.write_bytes(public_pem(key))
    return {
        "jwt_public_key_file": str(path),
        "algorithms": ["HS256", "RS256"],
        "issuer": ISSUER,
        "audience": AUDIENCE,
    }


async def test_an_rs256_token_verifies_with_the_configured_public_key(
    make_client: Any, tmp_path: Path
) -> None:
    key = rsa_private_key()
    client = await make_client(
        extra_plugins=(WhoAmIPlugin(),), identity=rs256_settings(tmp_path, key)
    )
    bearer = provider_token(key)
    response = await client.get("/test/whoami", headers=auth(bearer))
    assert response.status == 200
    assert await response.json() == {
        "subject": "moderator-7",
        "role": "moderator",
        "agency": None,
        "name": None,
    }
    hs = await client.get("/test/whoami", headers=auth(token("operator", "operator-1")))
    assert hs.status == 200


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"exp": str(int(time.time()) + 600)}, "the token has no numeric exp claim"),
        ({"iat": str(int(time.time()))}, "the token has no numeric iat claim"),
    ],
)
async def test_a_provider_token_with_a_numeric_string_time_is_a_401_not_a_500(
    make_client: Any, tmp_path: Path, changes: dict[str, Any], detail: str
) -> None:
    key = rsa_private_key()
    client = await make_client(
        extra_plugins=(WhoAmIPlugin(),), identity=rs256_settings(tmp_path, key)
    )
    response = await client.get("/test/whoami", headers=auth(provider_token(key, **changes)))
    assert (await problem(response, 401))["detail"] == detail


async def test_an_rs256_token_signed_by_another_key_is_401(
    make_client: Any, tmp_path: Path
) -> None:
    client = await make_client(
        extra_plugins=(WhoAmIPlugin(),), identity=rs256_settings(tmp_path, rsa_private_key())
    )
    bearer = jwt.encode(
        {"sub": "moderator-7", "role": "moderator", "iat": issued(), "exp": future()},
        rsa_private_key(),
        algorithm="RS256",
    )
    response = await client.get("/test/whoami", headers=auth(bearer))
    assert response.status == 401
    assert (await response.json())["detail"] == "the token's signature does not verify"


async def test_an_hs256_token_keyed_with_the_public_key_is_401(
    make_client: Any, tmp_path: Path
) -> None:
    # The algorithm-confusion attack: the public key is public, so it must never be an HMAC key.
    key = rsa_private_key()
    client = await make_client(
        extra_plugins=(WhoAmIPlugin(),), identity=rs256_settings(tmp_path, key)
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(
        json.dumps(
            {"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()}
        ).encode()
    )
    signature = hmac.new(public_pem(key), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    bearer = f"{header}.{claims}.{b64url(signature)}"
    response = await client.get("/test/whoami", headers=auth(bearer))
    assert response.status == 401
    assert (await response.json())["detail"] == "the token's signature does not verify"


async def test_an_rs256_token_is_refused_when_rs256_is_not_configured(make_client: Any) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    bearer = jwt.encode(
        {"sub": "moderator-7", "role": "moderator", "iat": issued(), "exp": future()},
        rsa_private_key(),
        algorithm="RS256",
    )
    response = await client.get("/test/whoami", headers=auth(bearer))
    assert response.status == 401
    assert (await response.json())["detail"] == "tokens signed with 'RS256' are not accepted"


def test_rs256_without_a_public_key_is_refused() -> None:
    bearer = jwt.encode(
        {"sub": "moderator-7", "role": "moderator", "iat": issued(), "exp": future()},
        rsa_private_key(),
        algorithm="RS256",
    )
    with pytest.raises(Unauthorized) as caught:
        verifier(algorithms=("HS256", "RS256")).verify(bearer)
    assert caught.value.detail == "tokens signed with 'RS256' are not accepted"


def test_hs256_is_refused_when_only_rs256_is_configured() -> None:
    key = rsa_private_key()
    only_rs = verifier(algorithms=("RS256",), public_key=public_pem(key).decode())
    with pytest.raises(Unauthorized) as caught:
        only_rs.verify(
            hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})
        )
    assert caught.value.detail == "tokens signed with 'HS256' are not accepted"


def test_ensure_role_refuses_no_identity_with_401_and_a_wrong_role_with_403() -> None:
    official = Identity(subject="official-1", role=Role.AGENCY, agency="akimat")
    assert ensure_role(official, frozenset({Role.AGENCY})) is official
    with pytest.raises(Unauthorized):
        ensure_role(None, frozenset({Role.AGENCY}))
    with pytest.raises(Forbidden) as caught:
        ensure_role(official, frozenset({Role.MODERATOR, Role.OPERATOR}))
    assert (
        caught.value.detail == "this route is for moderator, operator; the token's role is agency"
    )


@pytest.mark.parametrize(
    ("full_name", "shown"),
    [
        ("Aigerim Sadykova", "Aigerim S."),
        ("Aigerim Nurlanovna Sadykova", "Aigerim S."),
        ("  Aigerim   Sadykova  ", "Aigerim S."),
        ("Aigerim", "Aigerim"),
        ("Айгерим Жумабаева", "Айгерим Ж."),
        ("", "Anonymous"),
        ("   ", "Anonymous"),
        (None, "Anonymous"),
    ],
)
def test_public_name_is_the_first_name_and_the_last_initial(
    full_name: str | None, shown: str
) -> None:
    assert public_name(full_name) == shown
    assert Identity(subject="s", role=Role.CITIZEN, name=full_name).public_name == shown


def test_an_rs256_token_without_exp_is_refused() -> None:
    key = rsa_private_key()
    bearer = jwt.encode({"sub": "moderator-7", "role": "moderator"}, key, algorithm="RS256")
    rs = verifier(algorithms=("HS256", "RS256"), public_key=public_pem(key).decode())
    with pytest.raises(Unauthorized) as caught:
        rs.verify(bearer)
    assert caught.value.detail == 'the token is not valid: Token is missing the "exp" claim'


# --- the whole token's shape, checked by the verifier itself -----------------------------------


@pytest.mark.parametrize(
    ("case", "bearer", "detail"),
    [
        (
            "non_ascii_in_the_claims",
            hs256(
                {"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()}
            ).replace(".", ".é", 1),
            "the bearer token is not a well-formed JWT",
        ),
        (
            "non_ascii_in_the_signature",
            hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})
            + "é",
            "the bearer token is not a well-formed JWT",
        ),
        (
            "trailing_newline",
            hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})
            + "\n",
            "the bearer token is not a well-formed JWT",
        ),
        (
            "padded_signature",
            hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})
            + "=",
            "the bearer token is not a well-formed JWT",
        ),
        (
            "longer_than_the_cap",
            "a" * 4000 + "." + "b" * 4000 + "." + "c" * 193,
            "the bearer token is longer than 8192 characters",
        ),
        (
            "audience_claim",
            hs256(
                {
                    "sub": "operator-1",
                    "role": "operator",
                    "iat": issued(),
                    "exp": future(),
                    "aud": "other",
                }
            ),
            "the token is meant for another audience",
        ),
        (
            "issued_in_the_future",
            hs256({"sub": "operator-1", "role": "operator", "exp": future(), "iat": future() - 60}),
            "the token is not valid yet",
        ),
        (
            "crit_header",
            hand_signed(
                claims_json(sub="operator-1", role="operator", iat=issued(), exp=future()),
                header={"alg": "HS256", "crit": ["exp"]},
            ),
            "the token's header asks for an extension this server does not know",
        ),
    ],
)
def test_the_verifier_checks_the_whole_token_shape_itself(
    case: str, bearer: str, detail: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(bearer)
    assert caught.value.detail == detail


def test_a_non_canonical_signature_encoding_does_not_verify() -> None:
    bearer = hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 32 bytes encode to 43 characters: the last one carries two unused bits.
    twin = bearer[:-1] + alphabet[alphabet.index(bearer[-1]) ^ 1]
    assert base64.urlsafe_b64decode(twin.split(".")[2] + "=") == base64.urlsafe_b64decode(
        bearer.split(".")[2] + "="
    )
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(twin)
    assert caught.value.detail == "the token's signature does not verify"


async def test_a_non_ascii_bearer_token_is_a_401_problem_not_a_500(make_client: Any) -> None:
    client = await make_client(extra_plugins=(WhoAmIPlugin(),))
    bearer = hs256({"sub": "operator-1", "role": "operator", "iat": issued(), "exp": future()})
    response = await client.get(
        "/test/whoami", headers={"Authorization": f"Bearer {bearer[:10]}é{bearer[10:]}"}
    )
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert (await response.json())["detail"] == "the bearer token is not a well-formed JWT"


# --- every IIN-shaped subject is hashed, whatever the role ------------------------------------


@pytest.mark.parametrize("role", ["moderator", "operator", "agency"])
def test_an_official_whose_subject_is_an_iin_is_known_by_its_hash(role: str) -> None:
    claims = {"sub": IIN, "role": role, "iat": issued(), "exp": future(), "agency": "almaty-akimat"}
    identity = verifier().verify(hs256(claims))
    assert identity.subject == national_id_hash(IIN, IIN_SECRET.encode())


def test_an_official_subject_of_twelve_digits_is_hashed_even_with_a_bad_control_digit() -> None:
    identity = verifier().verify(
        hs256({"sub": "900101300123", "role": "moderator", "iat": issued(), "exp": future()})
    )
    assert identity.subject == national_id_hash("900101300123", IIN_SECRET.encode())


def test_an_official_subject_that_is_not_iin_shaped_is_kept() -> None:
    identity = verifier().verify(
        hs256({"sub": "moderator-7", "role": "moderator", "iat": issued(), "exp": future()})
    )
    assert identity.subject == "moderator-7"


# --- identity-provider tokens: iss, aud, typ and the maximum lifetime -------------------------

ISSUER = "https://idp.example.kz"
AUDIENCE = "qatysu"


def provider_token(
    key: Any, algorithm: str = "RS256", *, typ: str | None = "JWT", **changes: Any
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "moderator-7",
        "role": "moderator",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"typ": typ} if typ is not None else {"typ": None}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def provider_verifier(key: Any, algorithms: tuple[str, ...] = ("HS256", "RS256")) -> TokenVerifier:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return verifier(
        algorithms=algorithms,
        public_key=pem.decode(),
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetimes={"citizen": 7200, "agency": 3600, "moderator": 3600, "operator": 3600},
    )


def test_a_provider_token_with_the_configured_iss_aud_and_typ_verifies() -> None:
    key = rsa_private_key()
    identity = provider_verifier(key).verify(provider_token(key))
    assert (identity.subject, identity.role) == ("moderator-7", Role.MODERATOR)


def test_an_es256_provider_token_verifies_with_an_ec_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    identity = provider_verifier(key, ("ES256",)).verify(provider_token(key, "ES256", typ="at+jwt"))
    assert identity.role is Role.MODERATOR


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"iss": "https://evil.example"}, "the token is not valid: Invalid issuer"),
        ({"iss": None}, 'the token is not valid: Token is missing the "iss" claim'),
        ({"aud": "another-service"}, "the token is not valid: Audience doesn't match"),
        ({"aud": None}, 'the token is not valid: Token is missing the "aud" claim'),
        ({"iat": None}, 'the token is not valid: Token is missing the "iat" claim'),
        (
            {"iat": int(time.time()), "exp": int(time.time()) + 7200},
            "the token lives longer than 3600 seconds",
        ),
        (
            {
                "role": "citizen",
                "sub": IIN,
                "iat": int(time.time()),
                "exp": int(time.time()) + 7201,
            },
            "the token lives longer than 7200 seconds",
        ),
        # PyJWT reads numeric strings as times; on 6a18a39 the lifetime check then failed with a
        # TypeError, a 500. The shared rule wants JSON numbers.
        ({"exp": str(int(time.time()) + 600)}, "the token has no numeric exp claim"),
        ({"iat": str(int(time.time()))}, "the token has no numeric iat claim"),
        (
            {"iat": str(int(time.time())), "exp": str(int(time.time()) + 600)},
            "the token has no numeric exp claim",
        ),
        ({"iat": True}, "the token has no numeric iat claim"),
    ],
)
def test_a_provider_token_breaking_a_rule_is_refused(changes: dict[str, Any], detail: str) -> None:
    key = rsa_private_key()
    with pytest.raises(Unauthorized) as caught:
        provider_verifier(key).verify(provider_token(key, **changes))
    assert caught.value.detail == detail


@pytest.mark.parametrize("typ", ["dpop+jwt", "JOSE", None])
def test_a_provider_token_of_another_type_is_refused(typ: str | None) -> None:
    key = rsa_private_key()
    with pytest.raises(Unauthorized) as caught:
        provider_verifier(key).verify(provider_token(key, typ=typ))
    assert caught.value.detail == f"tokens of type {typ!r} are not accepted"


def test_the_type_is_compared_case_insensitively_and_without_application_prefix() -> None:
    key = rsa_private_key()
    assert provider_verifier(key).verify(provider_token(key, typ="application/AT+JWT"))


def test_a_public_key_that_is_not_pem_stops_the_verifier_at_start() -> None:
    with pytest.raises(SettingsError, match="not a PEM public key"):
        verifier(algorithms=("RS256",), public_key="not a key")


def test_an_rsa_key_cannot_be_configured_for_es256() -> None:
    key = rsa_private_key()
    with pytest.raises(SettingsError, match="cannot verify ES256 tokens"):
        provider_verifier(key, ("ES256",))


@pytest.mark.parametrize("missing", ["jwt_public_key_file", "issuer", "audience"])
def test_provider_algorithms_need_a_key_an_issuer_and_an_audience(missing: str) -> None:
    identity = {
        "algorithms": ["HS256", "RS256"],
        "jwt_public_key_file": "/nonexistent.pem",
        "issuer": ISSUER,
        "audience": AUDIENCE,
    }
    del identity[missing]
    with pytest.raises(SettingsError, match=rf"identity\.{missing}"):
        build_settings({"identity": identity})


def test_token_keys_carry_the_configured_secrets_key_and_provider_rules(tmp_path: Path) -> None:
    key = rsa_private_key()
    identity = {
        "jwt_secret": JWT_SECRET,
        "iin_hash_secret": IIN_SECRET,
        **rs256_settings(tmp_path, key),
        "leeway_seconds": 5,
        "max_token_lifetime_seconds": 600,
    }

    keys = token_keys(build_settings({"identity": identity}))

    assert keys == TokenKeys(
        hs256_secret=JWT_SECRET.encode(),
        national_id_secret=IIN_SECRET.encode(),
        public_key=public_pem(key).decode(),
        algorithms=("HS256", "RS256"),
        leeway=5.0,
        issuer=ISSUER,
        audience=AUDIENCE,
        token_types=("JWT", "at+jwt"),
        lifetimes={"citizen": 600.0, "agency": 600.0, "moderator": 600.0, "operator": 600.0},
    )


def test_an_unreadable_public_key_file_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    identity = {
        "jwt_secret": JWT_SECRET,
        "iin_hash_secret": IIN_SECRET,
        **rs256_settings(tmp_path, rsa_private_key()),
        "jwt_public_key_file": str(tmp_path / "missing.pem"),
    }

    with pytest.raises(SettingsError) as caught:
        token_keys(build_settings({"identity": identity}))

    assert str(caught.value).startswith(
        "identity.jwt_public_key_file: cannot read it: [Errno 2] No such file or directory"
    )


def test_officials_tokens_live_a_working_day_and_citizens_a_day_by_default() -> None:
    shipped = load_settings(config_file=Path(__file__).parents[3] / "config" / "default.toml")
    for settings in (build_settings({}), shipped):
        assert role_lifetimes(settings.identity.max_token_lifetime_seconds) == {
            "citizen": 86400.0,
            "agency": 28800.0,
            "moderator": 28800.0,
            "operator": 28800.0,
        }


def test_each_roles_maximum_lifetime_is_its_own_setting() -> None:
    settings = build_settings({"identity": {"max_token_lifetime_seconds": {"operator": 900}}})
    assert role_lifetimes(settings.identity.max_token_lifetime_seconds)["operator"] == 900.0
    assert role_lifetimes(settings.identity.max_token_lifetime_seconds)["citizen"] == 86400.0
    with pytest.raises(SettingsError, match=r"max_token_lifetime_seconds\.mayor: unknown setting"):
        build_settings({"identity": {"max_token_lifetime_seconds": {"mayor": 900}}})
    with pytest.raises(SettingsError, match="finite number"):
        build_settings({"identity": {"max_token_lifetime_seconds": float("inf")}})
