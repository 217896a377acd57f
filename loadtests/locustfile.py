"""Locust scenarios for engineers: citizens reading, signing a viral petition and commenting.

Locust is closed-loop (each user waits for an answer), so it shows how the site feels to people
using it while something else is going on; for overload figures use ``loadtests.flood``.

    QATYSU_JWT_SECRET=... .venv/bin/locust -f loadtests/locustfile.py --headless \\
        --host http://127.0.0.1:8080 --run-time 2m --csv bench-results/locust

``FlashCrowd`` drives the user count (ramp to a peak, hold, drop); tune it with
``FLASH_PEAK_USERS``, ``FLASH_RAMP_SECONDS``, ``FLASH_HOLD_SECONDS``, ``FLASH_TAIL_USERS`` and
``FLASH_TAIL_SECONDS``. Setup (a petition to read and sign, a consultation to discuss, an item
to search) happens once in ``test_start`` with tokens signed by ``QATYSU_JWT_SECRET``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import threading
from typing import Any

from locust import HttpUser, LoadTestShape, between, events, task

from loadtests.seeding import call, citizen_token, create_approved_petition, expect, mint

SEARCH_WORDS = ("budget", "school", "bridge", "tax", "water", "road")


class Stage:
    """What test_start created; every user reads it (set once, before users start)."""

    petition_id: str | None = None
    consultation_id: str | None = None
    secret: str = ""


_citizen_numbers = itertools.count(int(os.environ.get("LOCUST_CITIZEN_OFFSET", "1000000")))
_citizen_lock = threading.Lock()


def new_citizen_token() -> str:
    """A citizen nobody has used yet in this run (each signs or votes once)."""
    with _citizen_lock:
        number = next(_citizen_numbers)
    return citizen_token(Stage.secret, number)


def open_consultation(base_url: str, secret: str) -> str:
    agency = mint(secret, role="agency", sub="agency-loadtest", agency="minedu")
    now = dt.datetime.now(dt.UTC)
    body = {
        "title": "Draft rules for school enrolment",
        "summary": "How places in first grade are allocated between districts.",
        "sections": [
            {"heading": "Scope", "text": "These rules apply to state schools."},
            {"heading": "Allocation", "text": "Places are allocated by address first."},
        ],
        "opens_at": now.isoformat(),
        "closes_at": (now + dt.timedelta(days=60)).isoformat(),
    }
    status, answer = call(base_url, "POST", "/api/v1/consultations", token=agency, body=body)
    return str(expect(status, answer, 201, "opening the consultation")["id"])


def publish_information(base_url: str, secret: str) -> None:
    agency = mint(secret, role="agency", sub="agency-loadtest", agency="minfin")
    body = {
        "title": "Budget of the city for next year",
        "body": "The budget funds schools, roads, water and a new bridge; tax revenue grows.",
        "category": "budget",
        "language": "en",
    }
    status, answer = call(base_url, "POST", "/api/v1/information", token=agency, body=body)
    expect(status, answer, 201, "publishing an information item")


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def set_the_stage(environment: Any, **_: Any) -> None:
    secret = os.environ.get("QATYSU_JWT_SECRET", "")
    if not secret:
        raise RuntimeError("set QATYSU_JWT_SECRET to the server's token secret")
    host = environment.host or os.environ.get("LOCUST_HOST", "http://127.0.0.1:8080")
    Stage.secret = secret
    Stage.petition_id = create_approved_petition(host, secret)
    Stage.consultation_id = open_consultation(host, secret)
    publish_information(host, secret)


class CitizenReader(HttpUser):
    """Reads the viral petition, the most-signed list and searches published information."""

    weight = 6
    wait_time = between(0.5, 2.0)

    @task(6)
    def read_petition(self) -> None:
        self.client.get(f"/api/v1/petitions/{Stage.petition_id}", name="/api/v1/petitions/{id}")

    @task(2)
    def list_petitions(self) -> None:
        self.client.get("/api/v1/petitions?sort=signatures&limit=20", name="/api/v1/petitions")

    @task(2)
    def search_information(self) -> None:
        word = random.choice(SEARCH_WORDS)
        self.client.get(f"/api/v1/information?q={word}", name="/api/v1/information?q=")


class Signer(HttpUser):
    """A new citizen arrives, reads the petition and signs it once."""

    weight = 3
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.token = new_citizen_token()
        self.signed = False

    @task
    def read_then_sign(self) -> None:
        petition = f"/api/v1/petitions/{Stage.petition_id}"
        self.client.get(petition, name="/api/v1/petitions/{id}")
        if self.signed:
            # One signature per citizen; the next visitor is somebody new.
            self.token, self.signed = new_citizen_token(), False
        headers = {"Authorization": f"Bearer {self.token}"}
        self.client.post(
            petition + "/signatures", headers=headers, name="/api/v1/petitions/{id}/signatures"
        )
        self.signed = True


class Commenter(HttpUser):
    """Reads a consultation's thread, comments and votes before it closes."""

    weight = 1
    wait_time = between(2.0, 5.0)

    def on_start(self) -> None:
        self.token = new_citizen_token()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @task(3)
    def read_thread(self) -> None:
        self.client.get(
            f"/api/v1/consultations/{Stage.consultation_id}/comments",
            name="/api/v1/consultations/{id}/comments",
        )

    @task(1)
    def comment(self) -> None:
        self.client.post(
            f"/api/v1/consultations/{Stage.consultation_id}/comments",
            json={"text": "Section 2 should give siblings priority.", "section": 2},
            headers=self.auth,
            name="/api/v1/consultations/{id}/comments [post]",
        )

    @task(1)
    def vote(self) -> None:
        position = random.choice(("support", "oppose", "neutral"))
        self.client.post(
            f"/api/v1/consultations/{Stage.consultation_id}/votes",
            json={"position": position},
            headers=self.auth,
            name="/api/v1/consultations/{id}/votes",
        )


def env_number(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class FlashCrowd(LoadTestShape):
    """A petition goes viral: users ramp to a peak, hold there, then drop to a tail and stop."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.peak = int(env_number("FLASH_PEAK_USERS", 500))
        self.ramp = env_number("FLASH_RAMP_SECONDS", 30)
        self.hold = env_number("FLASH_HOLD_SECONDS", 60)
        self.tail_users = int(env_number("FLASH_TAIL_USERS", 50))
        self.tail = env_number("FLASH_TAIL_SECONDS", 30)

    def tick(self) -> tuple[int, float] | None:
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        # The spawn rate makes the ramp: users per second that reach the peak after `ramp`.
        if elapsed < self.ramp + self.hold:
            return self.peak, max(1.0, self.peak / max(self.ramp, 1.0))
        if elapsed < self.ramp + self.hold + self.tail:
            return self.tail_users, float(self.peak)  # the crowd leaves at once
        return None
