"""What a Locust run needs before its users arrive: the token secret and something to act on.

The secret is ``QATYSU_JWT_SECRET`` when set. Otherwise it is the development secret a local
server keeps in ``<data_dir>/dev-secrets.json`` (``var/`` by default, or
``QATYSU_SERVER__DATA_DIR``), so a run against ``make run`` needs no setup.

The stage (a petition in collection, an open consultation, a published item) is set once per run
through the public API, by the master when Locust is distributed, and sent to the workers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from loadtests.seeding import SetupError, call, create_approved_petition, expect, mint

DEV_SECRETS_FILE = "dev-secrets.json"
# An agency of the shipped register (config/default.toml): tokens of unregistered ones are refused.
STAGE_AGENCY = "almaty-akimat"

# Citizens are numbered in blocks of a million: one block per Locust worker, the first block
# picked at random per run, below the 179,000,000 that seeding.py keeps for petition authors.
CITIZEN_BLOCK = 1_000_000
CITIZEN_BLOCKS = 178
AUTHORS = 179_000_000


class NoSecret(SetupError):
    """No token secret: the environment has none and no local development secrets were found."""


def find_secret(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    environ = os.environ if environ is None else environ
    if secret := environ.get("QATYSU_JWT_SECRET", ""):
        return secret
    data_dir = Path(environ.get("QATYSU_SERVER__DATA_DIR") or "var")
    path = data_dir if data_dir.is_absolute() else (cwd or Path.cwd()) / data_dir
    path = path / DEV_SECRETS_FILE
    try:
        stored = json.loads(path.read_text())
        secret = stored["jwt_secret"] if isinstance(stored, dict) else ""
    except (OSError, ValueError, KeyError):
        secret = ""
    if not isinstance(secret, str) or not secret:
        raise NoSecret(
            f"no token secret: set QATYSU_JWT_SECRET to the server's, or run from the directory "
            f"of a local development server (its {path} was not found or is not readable)"
        )
    return secret


@dataclass(frozen=True, kw_only=True)
class Stage:
    petition_id: str
    consultation_id: str
    item_id: str
    agency: str
    first_block: int

    def as_message(self) -> dict[str, str | int]:
        return asdict(self)

    @classmethod
    def from_message(cls, data: Mapping[str, str | int]) -> Stage:
        return cls(
            petition_id=str(data["petition_id"]),
            consultation_id=str(data["consultation_id"]),
            item_id=str(data["item_id"]),
            agency=str(data["agency"]),
            first_block=int(data["first_block"]),
        )

    def citizen_number(self, worker_index: int, serial: int) -> int:
        """A number unique to (worker, serial) in this run; synthetic_iin turns it into an IIN."""
        block = (self.first_block + max(worker_index, 0)) % CITIZEN_BLOCKS
        return block * CITIZEN_BLOCK + serial % CITIZEN_BLOCK


def consultation_draft(title: str) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {
        "title": title,
        "summary": "How places in first grade are allocated between districts.",
        "sections": [
            {"heading": "Scope", "text": "These rules apply to state schools."},
            {"heading": "Allocation", "text": "Places are allocated by address first."},
        ],
        "opens_at": now.isoformat(),
        "closes_at": (now + dt.timedelta(days=60)).isoformat(),
    }


def information_item(title: str) -> dict[str, str]:
    return {
        "title": title,
        "body": "The budget funds schools, roads, water and a new bridge; tax revenue grows.",
        "category": "budget",
        "language": "en",
    }


def created_id(base_url: str, path: str, token: str, body: object, what: str) -> str:
    status, answer = call(base_url, "POST", path, token=token, body=body)
    return str(expect(status, answer, 201, what)["id"])


def set_stage(base_url: str, secret: str) -> Stage:
    agency = mint(secret, role="agency", sub="official-stage", agency=STAGE_AGENCY)
    # A new author each run: filing a petition is rate-limited per citizen.
    author = AUTHORS + random.randrange(CITIZEN_BLOCK)
    petition_id = create_approved_petition(base_url, secret, author_number=author)
    draft = consultation_draft("Draft rules for school enrolment")
    item = information_item("Budget of the city for next year")
    return Stage(
        petition_id=petition_id,
        consultation_id=created_id(
            base_url, "/api/v1/consultations", agency, draft, "opening the consultation"
        ),
        item_id=created_id(
            base_url, "/api/v1/information", agency, item, "publishing an information item"
        ),
        agency=STAGE_AGENCY,
        first_block=random.randrange(CITIZEN_BLOCKS),
    )
