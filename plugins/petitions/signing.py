"""Signing, batched inside the group-commit writer.

One batch of signatures costs one SELECT of the petitions involved, one multi-row
``INSERT .. ON CONFLICT DO NOTHING RETURNING`` and one counter UPDATE per petition. The
petition row is touched once per batch, not once per signature: that row is where the UK
petitions site's counting contended under a flood. The (petition, citizen hash) primary key
makes a second signature by one citizen impossible, whatever the concurrency or the number
of processes; the counter moves by exactly the rows that insert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.sdk import BatchKind, Conflict, NotFound, as_utc
from plugins.petitions.collection import collection_ends
from plugins.petitions.lifecycle import PRIVATE, SIGNABLE, Status, status_after_signatures
from plugins.petitions.tables import petitions, signatures

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Connection

    from core.sdk import WorkingDays
    from plugins.petitions.settings import Level, PetitionSettings


@dataclass(frozen=True, slots=True)
class SignRequest:
    petition_id: str
    citizen_hash: str
    public_name: str
    signed_at: dt.datetime
    # A region code of the register, or None when the identity provider gave none (or a
    # code the register does not know).
    region: str | None = None


@dataclass(frozen=True, slots=True)
class SignOutcome:
    petition_id: str
    created: bool
    signature_count: int
    status: Status
    # Set on exactly one outcome of the batch that moved the petition, for its event.
    became: Status | None = None


def signing_kind(
    settings: PetitionSettings, calendar: WorkingDays, levels: Mapping[str, Level]
) -> BatchKind[SignRequest, SignOutcome]:
    """``levels`` gives each addressee's answer term (central or local) by agency code."""

    def apply(
        conn: Connection, requests: Sequence[SignRequest]
    ) -> list[SignOutcome | BaseException]:
        return _apply(conn, requests, settings, calendar, levels)

    return BatchKind(name="petitions.sign", apply_sync=apply)


def _apply(
    conn: Connection,
    requests: Sequence[SignRequest],
    settings: PetitionSettings,
    calendar: WorkingDays,
    levels: Mapping[str, Level],
) -> list[SignOutcome | BaseException]:
    ids = sorted({r.petition_id for r in requests})
    rows = {
        row.id: row
        for row in conn.execute(
            sa.select(
                petitions.c.id,
                petitions.c.status,
                petitions.c.signature_count,
                petitions.c.threshold,
                petitions.c.co_signer_minimum,
                petitions.c.addressee,
                petitions.c.restricted_until,
                petitions.c.collection_ends_at,
            ).where(petitions.c.id.in_(ids))
        )
    }
    results: list[SignOutcome | BaseException | None] = [None] * len(requests)
    to_insert: dict[tuple[str, str], int] = {}
    for index, request in enumerate(requests):
        row = rows.get(request.petition_id)
        refusal = _refusal(row, request.signed_at)
        if refusal is not None:
            results[index] = refusal
        elif (request.petition_id, request.citizen_hash) not in to_insert:
            to_insert[(request.petition_id, request.citizen_hash)] = index
    _answer_repeats_as_already_signed(conn, requests, rows, results)
    inserted = _insert(conn, [requests[i] for i in to_insert.values()])
    added: dict[str, int] = {}
    for key in inserted:
        added[key[0]] = added.get(key[0], 0) + 1
    final: dict[str, tuple[int, Status, Status | None]] = {}
    for petition_id, row in rows.items():
        final[petition_id] = (row.signature_count, Status(row.status), None)
    for petition_id, count in added.items():
        final[petition_id] = _count_and_advance(
            conn, rows[petition_id], count, requests[0].signed_at, settings, calendar, levels
        )
    announced: set[str] = set()
    for index, request in enumerate(requests):
        if results[index] is not None:
            continue
        count, status, became = final[request.petition_id]
        key = (request.petition_id, request.citizen_hash)
        created = key in inserted and to_insert.get(key) == index
        announce = became if created and request.petition_id not in announced else None
        if announce is not None:
            announced.add(request.petition_id)
        results[index] = SignOutcome(request.petition_id, created, count, status, announce)
    return [r for r in results if r is not None]


def _answer_repeats_as_already_signed(
    conn: Connection,
    requests: Sequence[SignRequest],
    rows: dict[str, Any],
    results: list[SignOutcome | BaseException | None],
) -> None:
    """A citizen who signed before the petition stopped collecting is told so, not refused.

    A client retrying a signature whose 201 was lost, after that very signature carried the
    petition to its threshold, must see the same answer as any other repeat: 200 already signed.
    """
    refused = [i for i, result in enumerate(results) if isinstance(result, Conflict)]
    if not refused:
        return
    asked = {(requests[i].petition_id, requests[i].citizen_hash) for i in refused}
    signed = {
        (row.petition_id, row.citizen_hash)
        for row in conn.execute(
            sa.select(signatures.c.petition_id, signatures.c.citizen_hash).where(
                signatures.c.petition_id.in_({petition_id for petition_id, _ in asked}),
                signatures.c.citizen_hash.in_({citizen for _, citizen in asked}),
            )
        )
    }
    for index in refused:
        request = requests[index]
        if (request.petition_id, request.citizen_hash) in signed:
            row = rows[request.petition_id]
            results[index] = SignOutcome(
                request.petition_id, False, row.signature_count, Status(row.status)
            )


def _refusal(row: Any, now: dt.datetime) -> BaseException | None:
    # A petition not yet published (or rejected) is unknown to signers, exactly as GET says: a
    # 409 naming its status would tell anyone that it exists.
    if row is None or Status(row.status) in PRIVATE:
        return NotFound("no such petition")
    status = Status(row.status)
    if status not in SIGNABLE:
        return Conflict(
            "a petition in status {status} cannot be signed",
            extra={"petition_status": status.value},
            params={"status": status.value},
        )
    deadline = as_utc(
        row.restricted_until if status is Status.RESTRICTED else row.collection_ends_at
    )
    if deadline is not None and now > deadline:
        return Conflict(
            "the petition's collection period is over", extra={"petition_status": status.value}
        )
    return None


def _insert(conn: Connection, requests: Sequence[SignRequest]) -> set[tuple[str, str]]:
    if not requests:
        return set()
    statement = _INSERT_SIGNATURES[conn.dialect.name]
    # Executemany with RETURNING: SQLAlchemy compiles the statement once and sends the rows as
    # batched multi-row INSERTs ("insertmanyvalues"); a literal multi-row VALUES would be
    # compiled afresh for every batch size.
    rows = [
        {
            "petition_id": r.petition_id,
            "citizen_hash": r.citizen_hash,
            "public_name": r.public_name,
            "signed_at": r.signed_at,
            "region": r.region,
        }
        for r in requests
    ]
    result = conn.execute(statement, rows)
    return {(row.petition_id, row.citizen_hash) for row in result}


_INSERT_SIGNATURES = {
    name: dialect_insert(signatures)
    .on_conflict_do_nothing()
    .returning(signatures.c.petition_id, signatures.c.citizen_hash)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


def _count_and_advance(
    conn: Connection,
    row: Any,
    added: int,
    now: dt.datetime,
    settings: PetitionSettings,
    calendar: WorkingDays,
    levels: Mapping[str, Level],
) -> tuple[int, Status, Status | None]:
    # Increment in SQL, not from the value read: another process may be signing the same
    # petition (PostgreSQL), and an absolute write would lose its signatures.
    result = conn.execute(
        sa.update(petitions)
        .where(petitions.c.id == row.id)
        .values(signature_count=petitions.c.signature_count + added)
        .returning(petitions.c.signature_count, petitions.c.status)
    )
    count, status_value = result.one()
    status = Status(status_value)
    target = status_after_signatures(
        status, count, co_signer_minimum=row.co_signer_minimum, threshold=row.threshold
    )
    if target is status:
        return count, status, None
    values: dict[str, Any] = {"status": target.value}
    if target is Status.PUBLIC:
        values.update(
            was_public=True,
            collection_ends_at=collection_ends(calendar, now, settings.collection_term),
        )
    else:
        level = levels.get(row.addressee, "central")
        values.update(
            was_public=True,
            threshold_reached_at=now,
            response_due_at=calendar.term_end(now, settings.response_terms[level]),
        )
    moved = conn.execute(
        sa.update(petitions)
        .where(petitions.c.id == row.id, petitions.c.status == status.value)
        .values(**values)
    )
    if moved.rowcount == 1:
        return count, target, target
    return count, status, None
