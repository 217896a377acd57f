"""Citizens, officials and moderators on all three channels, with an SLO gate on the exit code.

    .venv/bin/locust -f loadtests/locustfile.py --headless -u 60 -r 30 -t 25s \\
        --host http://127.0.0.1:8080

Locust's own options drive the run (``-u``, ``-r``, ``-t``, ``--headless``, ``--processes``);
shapes are opt-in from ``loadtests/shapes.py``. Against a local development server no secret is
needed (see ``loadtests/stage.py``). Each simulated person has a distinct IIN, unique across
workers, and sends its own address in ``X-Forwarded-For``, which the server believes only from a
trusted proxy (``server.trusted_proxies``). 429 and 503 with ``Retry-After`` are protective
answers: the user waits as told, and the gate counts them apart from errors
(``loadtests/slo.py``, thresholds in ``loadtests/slo.toml``). The verdict is printed, written as
``<csv prefix>_slo.json`` beside Locust's CSV files, and put at the top of its HTML report.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, User, events, task
from locust.runners import MasterRunner, WorkerRunner

from loadtests import slo
from loadtests.seeding import SetupError, mint
from loadtests.stage import (
    Stage,
    consultation_draft,
    find_secret,
    information_item,
    set_stage,
)
from plugins.kazakhstan.iin import synthetic_iin

log = logging.getLogger("qatysu.loadtest")

SEARCH_WORDS = ("budget", "school", "bridge", "tax", "water", "road")
STAGE_MESSAGE = "qatysu_stage"
REPORT_KEY = "qatysu_slo"
MAX_BACKOFF_SECONDS = 30.0
SETUP_FAILED_EXIT_CODE = 2


class Run:
    """State of this Locust process: the stage, the signing secret and the outcome ledger."""

    stage: Stage | None = None
    secret: str = ""
    serial: int = 0
    ledger = slo.Ledger()


def next_serial() -> int:
    # Users start in greenlets of one thread: no lock is needed.
    Run.serial += 1
    return Run.serial


def retry_after_seconds(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.0), MAX_BACKOFF_SECONDS)
    except ValueError:  # an HTTP date: wait a second rather than parse it
        return 1.0


class Person(FastHttpUser):
    """Someone using the API from an address of their own, who waits when told to."""

    abstract = True
    think: tuple[float, float] = (1.0, 3.0)
    role = "citizen"

    def on_start(self) -> None:
        if Run.stage is None:
            log.error("no stage was set for this run; stopping")
            stop_run(self.environment)
            return
        self.resume_at = 0.0
        self.etags: dict[str, str] = {}
        self.arrive()

    def arrive(self) -> None:
        """Become a new person: a new number, address and token."""
        assert Run.stage is not None
        worker_index = getattr(self.environment.runner, "worker_index", 0)
        self.number = Run.stage.citizen_number(worker_index, next_serial())
        self.address = f"10.{self.number >> 16 & 255}.{self.number >> 8 & 255}.{self.number & 255}"
        self.token = self.mint_token()

    def mint_token(self) -> str | None:
        return None

    def wait_time(self) -> float:
        return max(random.uniform(*self.think), self.resume_at - time.monotonic())

    @property
    def stage(self) -> Stage:
        assert Run.stage is not None
        return Run.stage

    def send(
        self,
        method: str,
        path: str,
        *,
        name: str,
        route_class: str,
        channel: str,
        expected: Iterable[int] = (200,),
        json: Any = None,
        conditional: bool = False,
    ) -> Any:
        """One request, judged and recorded; returns the decoded body of a 2xx, else None."""
        headers = {"X-Forwarded-For": self.address}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if conditional and path in self.etags:
            headers["If-None-Match"] = self.etags[path]
        expected = (*expected, 304) if conditional else tuple(expected)
        with self.client.request(
            method, path, name=name, headers=headers, json=json, catch_response=True
        ) as response:
            status = response.status_code or 0
            retry_after = response.headers.get("Retry-After") if response.headers else None
            outcome = slo.classify(status, retry_after=retry_after is not None, expected=expected)
            Run.ledger.record(route_class, channel, response.request_meta["response_time"], outcome)
            if outcome == "error":
                response.failure(f"HTTP {status}" if status else str(response.error))
                return None
            response.success()
            if outcome == "protective":
                self.resume_at = time.monotonic() + retry_after_seconds(retry_after)
                return None
            if conditional and (etag := response.headers.get("ETag")):
                self.etags[path] = etag
            if 200 <= status < 300 and response.content:
                return response.json()
            return None


class BrowsingCitizen(Person):
    """Reads, searches and lists on every channel, anonymously, revalidating with ETags."""

    weight = 6
    think = (0.4, 1.2)

    @task(5)
    def read_the_petition(self) -> None:
        self.send(
            "GET",
            f"/api/v1/petitions/{self.stage.petition_id}",
            name="/api/v1/petitions/{id}",
            route_class="read",
            channel="petitions",
            conditional=True,
        )

    @task(2)
    def list_petitions(self) -> None:
        self.send(
            "GET",
            "/api/v1/petitions?sort=signatures&limit=20",
            name="/api/v1/petitions?sort=signatures",
            route_class="list",
            channel="petitions",
        )

    @task(2)
    def search_information(self) -> None:
        self.send(
            "GET",
            f"/api/v1/information?q={random.choice(SEARCH_WORDS)}",
            name="/api/v1/information?q=",
            route_class="list",
            channel="information",
        )

    @task(2)
    def read_an_item(self) -> None:
        self.send(
            "GET",
            f"/api/v1/information/{self.stage.item_id}",
            name="/api/v1/information/{id}",
            route_class="read",
            channel="information",
            conditional=True,
        )

    @task(2)
    def read_the_consultation(self) -> None:
        self.send(
            "GET",
            f"/api/v1/consultations/{self.stage.consultation_id}",
            name="/api/v1/consultations/{id}",
            route_class="read",
            channel="consultations",
            conditional=True,
        )

    @task(1)
    def read_the_comments(self) -> None:
        self.send(
            "GET",
            f"/api/v1/consultations/{self.stage.consultation_id}/comments",
            name="/api/v1/consultations/{id}/comments",
            route_class="list",
            channel="consultations",
        )

    @task(1)
    def read_public_requests(self) -> None:
        self.send(
            "GET",
            "/api/v1/information-requests/public",
            name="/api/v1/information-requests/public",
            route_class="list",
            channel="information",
        )


class EngagedCitizen(Person):
    """Signs the petition, comments and votes on the draft, files requests and petitions."""

    weight = 3
    think = (1.0, 2.5)

    def mint_token(self) -> str:
        return mint(Run.secret, role="citizen", sub=synthetic_iin(self.number), name="Aigerim S")

    @task(3)
    def sign_the_petition(self) -> None:
        self.send(
            "POST",
            f"/api/v1/petitions/{self.stage.petition_id}/signatures",
            name="/api/v1/petitions/{id}/signatures",
            route_class="citizen_write",
            channel="petitions",
            # 409: the petition reached its threshold and stopped collecting during a long run.
            expected=(201, 409),
        )
        # One signature each: the next visitor is somebody new.
        self.arrive()

    @task(2)
    def comment(self) -> None:
        self.send(
            "POST",
            f"/api/v1/consultations/{self.stage.consultation_id}/comments",
            name="/api/v1/consultations/{id}/comments [post]",
            route_class="citizen_write",
            channel="consultations",
            expected=(201,),
            json={"text": "Siblings should be placed in the same school.", "section": 2},
        )

    @task(2)
    def vote(self) -> None:
        self.send(
            "POST",
            f"/api/v1/consultations/{self.stage.consultation_id}/votes",
            name="/api/v1/consultations/{id}/votes",
            route_class="citizen_write",
            channel="consultations",
            expected=(200, 201),
            json={"position": random.choice(("support", "oppose", "neutral"))},
        )

    @task(1)
    def ask_for_information(self) -> None:
        filed = self.send(
            "POST",
            "/api/v1/information-requests",
            name="/api/v1/information-requests",
            route_class="citizen_write",
            channel="information",
            expected=(201,),
            json={
                "agency": self.stage.agency,
                "subject": "Snow clearing contracts",
                "text": "Please publish this winter's snow clearing contracts.",
                "language": "en",
                "public": random.random() < 0.5,
            },
        )
        if filed is not None:
            self.send(
                "GET",
                f"/api/v1/information-requests/{filed['id']}",
                name="/api/v1/information-requests/{id}",
                route_class="read",
                channel="information",
            )

    @task(1)
    def file_a_petition(self) -> None:
        self.send(
            "POST",
            "/api/v1/petitions",
            name="/api/v1/petitions [post]",
            route_class="citizen_write",
            channel="petitions",
            expected=(201,),
            json={
                "title": "Light the footpath between the two bridges",
                "text": "The footpath has no lighting and is unsafe after dark. "
                "We ask for street lights before winter.",
                "addressee": self.stage.agency,
            },
        )


class AgencyOfficial(Person):
    """Answers information requests, publishes, reports on consultations, answers petitions."""

    weight = 1
    think = (1.0, 3.0)
    role = "agency"

    def on_start(self) -> None:
        self.consultation_id: str | None = None
        super().on_start()

    def mint_token(self) -> str:
        return mint(Run.secret, role="agency", sub=f"official-{self.number}", agency=self.agency)

    @property
    def agency(self) -> str:
        return self.stage.agency

    @task(3)
    def answer_a_request(self) -> None:
        queue = self.send(
            "GET",
            "/api/v1/information-requests?queue=agency&status=registered&limit=10",
            name="/api/v1/information-requests?queue=agency",
            route_class="list",
            channel="information",
        )
        if queue and queue["items"]:
            request = random.choice(queue["items"])
            self.send(
                "POST",
                f"/api/v1/information-requests/{request['id']}/answer",
                name="/api/v1/information-requests/{id}/answer",
                route_class="official_write",
                channel="information",
                # 409: another official answered it first.
                expected=(200, 409),
                json={
                    "text": "The contracts are published on the akimat's site.",
                    "language": "en",
                },
            )

    @task(1)
    def publish(self) -> None:
        self.send(
            "POST",
            "/api/v1/information",
            name="/api/v1/information [post]",
            route_class="official_write",
            channel="information",
            expected=(201,),
            json=information_item("Road repairs planned for the spring"),
        )

    @task(1)
    def consult_and_report(self) -> None:
        """Open a draft of one's own, and on the next turn publish its report (which closes it)."""
        if self.consultation_id is None:
            opened = self.send(
                "POST",
                "/api/v1/consultations",
                name="/api/v1/consultations [post]",
                route_class="official_write",
                channel="consultations",
                expected=(201,),
                json=consultation_draft("Draft rules for snow clearing"),
            )
            self.consultation_id = opened["id"] if opened else None
            return
        self.send(
            "POST",
            f"/api/v1/consultations/{self.consultation_id}/report",
            name="/api/v1/consultations/{id}/report",
            route_class="official_write",
            channel="consultations",
            # 409 names the date from which the report may come: a fresh draft's minimum
            # discussion period (consultations.min_discussion_days) has not passed yet.
            expected=(201, 409),
            json={"summary": "Section 2 now names who pays.", "answers": []},
        )
        self.consultation_id = None

    @task(1)
    def answer_a_petition(self) -> None:
        waiting = self.send(
            "GET",
            "/api/v1/petitions?status=awaiting_response&limit=10",
            name="/api/v1/petitions?status=awaiting_response",
            route_class="list",
            channel="petitions",
        )
        mine = [
            p
            for p in (waiting or {}).get("items", [])
            if p["addressee"] == self.agency and p["response"] is None
        ]
        if mine:
            self.send(
                "POST",
                f"/api/v1/petitions/{random.choice(mine)['id']}/response",
                name="/api/v1/petitions/{id}/response",
                route_class="official_write",
                channel="petitions",
                # 409: another official answered it first.
                expected=(200, 409),
                json={"text": "The akimat will fund the work in next year's budget."},
            )


class Watcher(User):
    """Holds a live-count stream of the viral petition and checks that its count never goes
    back, across its reconnections too (each resumes with ``Last-Event-ID``).

    Each event is recorded as a request named ``/api/v1/petitions/{id}/live event``; a count
    lower than one already seen fails it. A stream is held ``hold`` seconds, then reopened.
    """

    weight = 1
    hold = 30.0

    def wait_time(self) -> float:
        return max(0.5, self.resume_at - time.monotonic())

    def on_start(self) -> None:
        if Run.stage is None:
            log.error("no stage was set for this run; stopping")
            stop_run(self.environment)
            return
        number = next_serial()
        self.address = f"10.250.{number >> 8 & 255}.{number & 255}"
        self.last_count = -1
        self.last_id: str | None = None
        self.resume_at = 0.0

    @task
    def watch(self) -> None:
        assert Run.stage is not None
        assert self.host is not None
        target = urlsplit(self.host)
        path = f"/api/v1/petitions/{Run.stage.petition_id}/live"
        head = [
            f"GET {path} HTTP/1.1",
            f"Host: {target.netloc}",
            "Accept: text/event-stream",
            f"X-Forwarded-For: {self.address}",
        ]
        if self.last_id is not None:
            head.append(f"Last-Event-ID: {self.last_id}")
        started = time.monotonic()
        try:
            sock = socket.create_connection((target.hostname, target.port or 80), timeout=30)
        except OSError as exc:
            self.fire("/api/v1/petitions/{id}/live", started, exc)
            return
        with sock, sock.makefile("rb") as stream:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            self.read(stream, started)

    def read(self, stream: Any, started: float) -> None:
        status_line = stream.readline()
        status = int(status_line.split()[1]) if status_line.startswith(b"HTTP/") else 0
        retry_after = None
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "retry-after":
                retry_after = value.strip()
        if status != 200:
            if status in (204,):
                self.last_id, self.last_count = None, -1  # the petition closed: start over
            self.resume_at = time.monotonic() + retry_after_seconds(retry_after)
            error = None if status in (204, 429, 503) else RuntimeError(f"HTTP {status}")
            self.fire("/api/v1/petitions/{id}/live", started, error)
            return
        self.fire("/api/v1/petitions/{id}/live", started, None)
        until = time.monotonic() + self.hold
        while time.monotonic() < until:
            line = stream.readline()
            if not line:
                return
            if line.startswith(b"id: "):
                self.last_id = line[4:].strip().decode()
            elif line.startswith(b"data: "):
                self.check(json.loads(line[6:]), time.monotonic())

    def check(self, data: dict[str, Any], received: float) -> None:
        count = data.get("signature_count")
        if not isinstance(count, int):
            return
        error = None
        if count < self.last_count:
            error = RuntimeError(f"the count went down from {self.last_count} to {count}")
        self.last_count = max(self.last_count, count)
        self.fire("/api/v1/petitions/{id}/live event", received, error)

    def fire(self, name: str, started: float, error: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type="SSE",
            name=name,
            response_time=(time.monotonic() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )


class Moderator(Person):
    """Approves or rejects petitions in moderation and hides comments on the draft."""

    weight = 1
    think = (1.0, 3.0)

    def mint_token(self) -> str:
        return mint(Run.secret, role="moderator", sub=f"moderator-{self.number}")

    @task(2)
    def moderate_a_petition(self) -> None:
        pending = self.send(
            "GET",
            "/api/v1/petitions?status=moderation&limit=10",
            name="/api/v1/petitions?status=moderation",
            route_class="list",
            channel="petitions",
        )
        if pending and pending["items"]:
            approve = random.random() < 0.8
            self.send(
                "POST",
                f"/api/v1/petitions/{random.choice(pending['items'])['id']}/moderation",
                name="/api/v1/petitions/{id}/moderation",
                route_class="official_write",
                channel="petitions",
                # 409: another moderator decided first.
                expected=(200, 409),
                json={"decision": "approve"}
                if approve
                else {
                    "decision": "reject",
                    "reason_code": "form_requirements",
                    "reason": "A duplicate of an open petition.",
                },
            )

    @task(1)
    def hide_a_comment(self) -> None:
        path = f"/api/v1/consultations/{self.stage.consultation_id}/comments"
        thread = self.send(
            "GET",
            path + "?limit=20",
            name="/api/v1/consultations/{id}/comments",
            route_class="list",
            channel="consultations",
        )
        visible = [c for c in (thread or {}).get("items", []) if not c.get("hidden")]
        if visible:
            self.send(
                "POST",
                f"{path}/{random.choice(visible)['id']}/hide",
                name="/api/v1/consultations/{id}/comments/{comment_id}/hide",
                route_class="official_write",
                channel="consultations",
                # 409: another moderator hid it first.
                expected=(200, 409),
                json={"reason": "Abusive language."},
            )


# ---------------------------------------------------------------------------------------------
# The run: setting the stage, stopping cleanly, carrying outcomes to the master, the gate.


def stop_run(environment: Any, reason: str | None = None) -> None:
    """Quit this Locust run with exit code 2, saying why in one line."""
    if reason is not None:
        log.error(reason)
    environment.process_exit_code = SETUP_FAILED_EXIT_CODE
    # quit() kills the greenlet that spawns users, which may be this one: run it from another
    # and wait, so that no user starts in between.
    gevent.spawn(environment.runner.quit).join()


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def add_arguments(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--slo-file",
        default=str(slo.DEFAULT_THRESHOLDS_FILE),
        env_var="QATYSU_SLO_FILE",
        help="the SLO thresholds per route class that set the exit code (TOML)",
    )


@events.init.add_listener  # type: ignore[untyped-decorator]
def wire_the_run(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(STAGE_MESSAGE, receive_stage)
        environment.events.report_to_master.add_listener(send_outcomes)
    else:
        if isinstance(runner, MasterRunner):
            environment.events.worker_report.add_listener(receive_outcomes)
        environment.events.quitting.add_listener(gate)


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def prepare(environment: Any, **_: Any) -> None:
    runner = environment.runner
    try:
        Run.secret = find_secret()
    except SetupError as error:
        stop_run(environment, str(error))
        return
    if isinstance(runner, WorkerRunner):
        return  # the master sets the stage and sends it
    if not environment.host:
        stop_run(environment, "no server to load: pass --host http://HOST:PORT")
        return
    try:
        slo.load_thresholds(thresholds_file(environment))
    except slo.ThresholdsError as error:
        stop_run(environment, str(error))
        return
    try:
        Run.stage = set_stage(environment.host, Run.secret)
    except (SetupError, OSError) as error:
        stop_run(environment, f"cannot set the stage on {environment.host}: {error}")
        return
    log.info("stage set: %s", Run.stage)
    if isinstance(runner, MasterRunner):
        runner.send_message(STAGE_MESSAGE, Run.stage.as_message())


def receive_stage(environment: Any, msg: Any, **_: Any) -> None:
    Run.stage = Stage.from_message(msg.data)


def send_outcomes(client_id: str, data: dict[str, Any]) -> None:
    data[REPORT_KEY] = Run.ledger.drain()


def receive_outcomes(client_id: str, data: dict[str, Any]) -> None:
    if REPORT_KEY in data:
        Run.ledger.merge(data[REPORT_KEY])


def thresholds_file(environment: Any) -> Path:
    return Path(getattr(environment.parsed_options, "slo_file", slo.DEFAULT_THRESHOLDS_FILE))


def gate(environment: Any, **_: Any) -> None:
    """Judge the run against the thresholds: print the table, set the exit code (0 or 1)."""
    if environment.process_exit_code == SETUP_FAILED_EXIT_CODE:
        return
    try:
        thresholds = slo.load_thresholds(thresholds_file(environment))
    except slo.ThresholdsError as error:
        log.error("%s", error)
        environment.process_exit_code = SETUP_FAILED_EXIT_CODE
        return
    rows = slo.judge(Run.ledger, thresholds)
    print(slo.render(Run.ledger, rows), flush=True)
    environment.process_exit_code = 0 if slo.verdict(Run.ledger, rows) else 1
    write_verdict(environment.parsed_options, rows, thresholds)


def write_verdict(options: Any, rows: list[slo.Row], thresholds: dict[str, slo.Threshold]) -> None:
    """The verdict as JSON beside Locust's CSV files, and at the top of its HTML report (which
    Locust has written by the time the run quits)."""
    csv_prefix = getattr(options, "csv_prefix", None)
    if csv_prefix:
        path = Path(f"{csv_prefix}_slo.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        document = slo.verdict_document(Run.ledger, rows, thresholds)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        log.info("SLO verdict written to %s", path)
    html_file = getattr(options, "html_file", None)
    if html_file and Path(html_file).is_file():
        report = Path(html_file).read_text(encoding="utf-8")
        Path(html_file).write_text(
            slo.with_verdict_section(report, Run.ledger, rows, thresholds), encoding="utf-8"
        )
