"""Core and the information channel on Freedonia (``tests.support.freedonia``), Kazakhstan's
plugin switched off: settings, and a walk through filing and reading a request.

Run as ``python -m tests.support.stub_country DIR`` it does the walk in a fresh process and
prints, as JSON, what it saw and which ``plugins.kazakhstan`` modules were imported.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from core.host.app import create_app
from core.identity.tokens import mint_token
from core.settings import Settings, build_settings
from tests.support.freedonia import FreedoniaPlugin

SECRET = "stub-country-jwt-secret-long-enough-0123456789"
REQUESTS = "/api/v1/information-requests"
REQUEST = {
    "agency": "capital-council",
    "subject": "Street lighting",
    "text": "Please publish the schedule of street lighting repairs in the capital.",
    "language": "en",
}
# Everything but core, the information channel and bearer-token identity is switched off.
DISABLED = ["plugins.petitions", "plugins.consultations", "plugins.kazakhstan"]


def freedonian_settings(data_dir: Path) -> Settings:
    return build_settings(
        {
            "server": {"data_dir": str(data_dir), "access_log": False, "validate_responses": True},
            "identity": {"jwt_secret": SECRET, "iin_hash_secret": SECRET},
            "database": {"url": f"sqlite:///{data_dir / 'qatysu.db'}", "migrate_on_start": True},
            "admission": {"enabled": False},
            "plugins": {"disabled": DISABLED},
        }
    )


def bearer(role: str, sub: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET.encode(), role=role, sub=sub, **claims)}"}


async def file_and_read(client: Any) -> dict[str, Any]:
    """File a request as a Freedonian citizen, read it back, and try the other doors."""
    citizen = bearer("citizen", "FD-000042", name="Ada Lovelace")
    filed = await client.post(REQUESTS, json=REQUEST, headers=citizen)
    filed_body = await filed.json()
    read = await client.get(f"{REQUESTS}/{filed_body['id']}", headers=citizen)
    kazakh_citizen = await client.post(
        REQUESTS, json=REQUEST, headers=bearer("citizen", "900101300126")
    )
    unknown_agency = await client.post(REQUESTS, json={**REQUEST, "agency": "almaty-akimat"})
    return {
        "filed": filed.status,
        "filed_body": filed_body,
        "read": read.status,
        "read_body": await read.json(),
        "kazakh_citizen": kazakh_citizen.status,
        "kazakh_citizen_detail": (await kazakh_citizen.json(content_type=None))["detail"],
        "agencies_route": (await client.get("/api/v1/agencies")).status,
        "unknown_agency": unknown_agency.status,
    }


async def _walk(data_dir: Path) -> dict[str, Any]:
    app = create_app(freedonian_settings(data_dir), extra_plugins=(FreedoniaPlugin(),))
    async with TestClient(TestServer(app)) as client:
        return await file_and_read(client)


def main(data_dir: str) -> None:
    seen = asyncio.run(_walk(Path(data_dir)))
    seen["kazakh_modules"] = sorted(m for m in sys.modules if m.startswith("plugins.kazakhstan"))
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1])
