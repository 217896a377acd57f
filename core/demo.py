"""Sample tokens for ``qatysu serve --demo``: one per role, signed with the server's secret."""

from __future__ import annotations

from core.identity import mint_token
from core.iin import synthetic_iin

DEMO_TTL_SECONDS = 7 * 24 * 3600
DEMO_AGENCY = "almaty-akimat"


def demo_token_lines(secret: bytes) -> list[str]:
    tokens = {
        "citizen": mint_token(
            secret,
            role="citizen",
            sub=synthetic_iin(42),
            name="Aigerim Sadykova",
            ttl=DEMO_TTL_SECONDS,
        ),
        "moderator": mint_token(
            secret,
            role="moderator",
            sub="moderator-demo",
            name="Dana Moderator",
            ttl=DEMO_TTL_SECONDS,
        ),
        "agency": mint_token(
            secret,
            role="agency",
            sub="official-demo",
            agency=DEMO_AGENCY,
            name="Akimat Official",
            ttl=DEMO_TTL_SECONDS,
        ),
        "operator": mint_token(secret, role="operator", sub="operator-demo", ttl=DEMO_TTL_SECONDS),
    }
    lines = ["", "Sample tokens (valid 7 days); use as 'Authorization: Bearer <token>':"]
    lines += [f"  {role:<9} {value}" for role, value in tokens.items()]
    lines += [
        "",
        "Try:",
        "  curl -s http://HOST/api/v1/petitions?sort=signatures",
        '  curl -s -X POST -H "Authorization: Bearer $CITIZEN" '
        "http://HOST/api/v1/petitions/demo-public/signatures",
        "",
    ]
    return lines
