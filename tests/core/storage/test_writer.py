"""The group-commit writer: nothing is acknowledged before it is committed; failures stay local."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.observability.metrics import Metrics
from core.storage.database import Database
from core.storage.migrations import Migration, MigrationSet, create_tables, migrate
from core.storage.writer import BatchKind, Writer
from core.wire.errors import Conflict, OutcomeUnknown, ServiceUnavailable
from tests.support.storage import Gate

metadata = sa.MetaData()
items = sa.Table(
    "test_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("label", sa.String(50), nullable=False, unique=True),
)
SCHEMA = MigrationSet(
    namespace="writer_test",
    migrations=[Migration(version=1, description="items", upgrade=create_tables(items))],
)

Write = Callable[[AsyncConnection], Awaitable[Any]]
WriterFactory = Callable[..., Writer]


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await migrate(db, [SCHEMA])
    yield db
    await db.dispose()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def make_writer(database: Database, metrics: Metrics) -> AsyncIterator[WriterFactory]:
    """Started writers over the test database; each is closed (and so flushed) afterwards."""
    started: list[Writer] = []

    def factory(
        *,
        queue_size: int = 100,
        max_batch: int = 64,
        commit_timeout: float = 5.0,
        restart_delay: float = 1.0,
    ) -> Writer:
        writer = Writer(
            database,
            queue_size=queue_size,
            max_batch=max_batch,
            metrics=metrics,
            commit_timeout=commit_timeout,
            restart_delay=restart_delay,
        )
        writer.start()
        started.append(writer)
        return writer

    yield factory
    for writer in started:
        await writer.close()


@pytest.fixture
async def observer(database_url: str) -> AsyncIterator[Database]:
    """A separate engine, as another process would see the database."""
    db = Database(database_url)
    yield db
    await db.dispose()


async def committed_labels(observer: Database) -> list[str]:
    async with observer.read() as conn:
        rows = await conn.execute(sa.select(items.c.label).order_by(items.c.label))
        return [row.label for row in rows]


def insert(label: str) -> Write:
    async def write(conn: AsyncConnection) -> str:
        await conn.execute(items.insert().values(label=label))
        return f"stored {label}"

    return write


def insert_then_fail(label: str) -> Write:
    async def write(conn: AsyncConnection) -> str:
        await conn.execute(items.insert().values(label=label))
        raise ValueError(f"rule broken by {label}")

    return write


async def hold(writer: Writer) -> tuple[Gate, asyncio.Task[Any]]:
    """Occupy the writer with a gate, so that what is submitted next queues up behind it."""
    gate = Gate()
    task = asyncio.create_task(writer.submit(gate))
    await gate.entered.wait()
    return gate, task


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never became true")


def sample(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


# --- commit before acknowledgement -----------------------------------------------------------


async def test_a_write_is_visible_to_others_the_moment_submit_returns(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer()
    assert await writer.submit(insert("first")) == "stored first"
    assert await committed_labels(observer) == ["first"]


async def test_a_write_is_not_acknowledged_before_its_transaction_commits(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer()
    inserted, release = asyncio.Event(), asyncio.Event()

    async def slow_insert(conn: AsyncConnection) -> str:
        await conn.execute(items.insert().values(label="pending"))
        inserted.set()
        await release.wait()
        return "done"

    submitted = asyncio.create_task(writer.submit(slow_insert))
    await inserted.wait()
    assert await committed_labels(observer) == []
    assert not submitted.done()
    release.set()
    assert await submitted == "done"
    assert await committed_labels(observer) == ["pending"]


# --- failures --------------------------------------------------------------------------------


async def test_a_sole_failing_write_gets_its_own_exception_and_saves_nothing(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer()
    with pytest.raises(ValueError, match=r"^rule broken by solo$"):
        await writer.submit(insert_then_fail("solo"))
    assert await committed_labels(observer) == []
    assert await writer.submit(insert("next")) == "stored next"
    assert await committed_labels(observer) == ["next"]


async def test_a_sole_write_that_breaks_a_constraint_gets_409_not_the_database_error(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer()
    await writer.submit(insert("taken"))
    with pytest.raises(Conflict) as caught:
        await writer.submit(insert("taken"))
    assert caught.value.detail == "the write conflicts with what is stored; it was not saved"
    assert await committed_labels(observer) == ["taken"]


@pytest.mark.parametrize("failure", ["exception", "constraint"])
async def test_a_failing_write_in_a_batch_rolls_back_alone(
    make_writer: WriterFactory, observer: Database, metrics: Metrics, failure: str
) -> None:
    writer = make_writer()
    await writer.submit(insert("taken"))
    gate, held = await hold(writer)
    bad_write = insert_then_fail("bad") if failure == "exception" else insert("taken")
    tasks = [
        asyncio.create_task(writer.submit(insert("one"))),
        asyncio.create_task(writer.submit(bad_write)),
        asyncio.create_task(writer.submit(insert("two"))),
    ]
    await until(lambda: writer.queue_length == 3)
    gate.released.set()
    await held
    one, bad, two = await asyncio.gather(*tasks, return_exceptions=True)
    assert (one, two) == ("stored one", "stored two")
    if failure == "exception":
        assert isinstance(bad, ValueError)
        assert str(bad) == "rule broken by bad"
    else:
        assert isinstance(bad, Conflict)
    assert await committed_labels(observer) == ["one", "taken", "two"]
    # The three shared one commit.
    assert sample(metrics, "qatysu_writer_batch_size_count") == 3.0
    assert sample(metrics, "qatysu_writer_batch_size_sum") == 5.0


async def test_a_broken_batch_kind_fails_its_own_items_and_the_rest_of_the_batch_commits(
    make_writer: WriterFactory, observer: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def miscounting(conn: AsyncConnection, labels: Sequence[str]) -> list[str]:
        await conn.execute(items.insert(), [{"label": label} for label in labels])
        return []

    kind: BatchKind[str, str] = BatchKind(name="miscounting", apply=miscounting)
    writer = make_writer()
    gate, held = await hold(writer)
    tasks = [
        asyncio.create_task(writer.submit_batched(kind, "a")),
        asyncio.create_task(writer.submit_batched(kind, "b")),
        asyncio.create_task(writer.submit(insert("single"))),
    ]
    await until(lambda: writer.queue_length == 3)
    with caplog.at_level(logging.WARNING, logger="core.storage.writer"):
        gate.released.set()
        await held
        a, b, single = await asyncio.gather(*tasks, return_exceptions=True)
    for result in (a, b):
        assert isinstance(result, ServiceUnavailable)
        assert result.status == 503
        assert result.reason == "commit_failed"
        assert result.detail == "storage failed to commit the write; it was not saved"
    assert single == "stored single"
    assert await committed_labels(observer) == ["single"]
    assert "a write batch of 3 failed (RuntimeError); committing its halves apart" in caplog.text
    assert "a write batch of 1 failed to commit" in caplog.text


def labels_kind() -> BatchKind[str, str]:
    """One multi-row INSERT for the whole batch, as the signing batch does."""

    async def apply(conn: AsyncConnection, labels: Sequence[str]) -> list[str]:
        await conn.execute(items.insert(), [{"label": label} for label in labels])
        return [f"#{label}" for label in labels]

    return BatchKind(name="labels", apply=apply)


async def test_a_poisoned_item_of_a_multi_row_batch_fails_alone_and_every_other_commits(
    make_writer: WriterFactory, observer: Database
) -> None:
    kind = labels_kind()
    writer = make_writer()
    await writer.submit(insert("taken"))
    gate, held = await hold(writer)
    labels = [f"v{n:02}" for n in range(20)]
    labels[7] = labels[13] = "taken"
    tasks = [asyncio.create_task(writer.submit_batched(kind, label)) for label in labels]
    await until(lambda: writer.queue_length == 20)
    gate.released.set()
    await held
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for index, (label, result) in enumerate(zip(labels, results, strict=True)):
        if index in (7, 13):
            assert isinstance(result, Conflict)
        else:
            assert result == f"#{label}"
    expected = sorted({*labels, "taken"})
    assert await committed_labels(observer) == expected


async def test_a_storage_failure_fails_the_whole_batch_at_once_without_splitting_it(
    make_writer: WriterFactory, observer: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def storage_gone(conn: AsyncConnection, labels: Sequence[str]) -> list[str]:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    kind: BatchKind[str, str] = BatchKind(name="gone", apply=storage_gone)
    writer = make_writer()
    gate, held = await hold(writer)
    tasks = [asyncio.create_task(writer.submit_batched(kind, f"g{n}")) for n in range(4)]
    await until(lambda: writer.queue_length == 4)
    with caplog.at_level(logging.WARNING, logger="core.storage.writer"):
        gate.released.set()
        await held
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        assert isinstance(result, ServiceUnavailable)
        assert result.reason == "commit_failed"
    assert "committing its halves apart" not in caplog.text
    assert "a write batch of 4 failed to commit" in caplog.text
    assert await committed_labels(observer) == []


async def test_a_batch_timed_out_before_commit_is_answered_not_saved_and_is_not_saved(
    make_writer: WriterFactory, observer: Database
) -> None:
    async def stalls(conn: AsyncConnection) -> str:
        await conn.execute(items.insert().values(label="stalled"))
        await asyncio.sleep(1.0)
        return "never"

    writer = make_writer(commit_timeout=0.05)
    with pytest.raises(ServiceUnavailable) as caught:
        await writer.submit(stalls)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.reason == "commit_failed"
    assert await committed_labels(observer) == []


async def test_a_commit_that_outlives_its_timeout_is_answered_outcome_unknown_and_commits(
    tmp_path: Path,
) -> None:
    """On SQLite the batch runs in the writer's thread, which a timeout cannot stop: telling
    the caller "not saved" would be false, since the transaction goes on and commits."""
    database = Database(f"sqlite:///{tmp_path / 'slow.db'}")
    await migrate(database, [SCHEMA])
    released = threading.Event()

    def slow_insert(conn: Connection, labels: Sequence[str]) -> list[str]:
        conn.execute(items.insert(), [{"label": label} for label in labels])
        released.wait(5)
        return [f"#{label}" for label in labels]

    kind: BatchKind[str, str] = BatchKind(name="slow", apply_sync=slow_insert)
    writer = Writer(database, queue_size=10, max_batch=10, commit_timeout=0.05)
    writer.start()
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            await writer.submit_batched(kind, "late")
        unknown = caught.value
        assert unknown.status == 503
        assert unknown.body()["type"] == "/problems/outcome-unknown"
        assert unknown.detail == (
            "storage did not confirm the commit: the write may or may not be saved; "
            "retry with the same Idempotency-Key"
        )
        released.set()
    finally:
        await writer.close()
    assert await committed_labels(database) == ["late"]
    await database.dispose()


async def test_a_writer_that_stops_refuses_writes_at_once_and_is_restarted(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer(restart_delay=0.2)
    _gate, held = await hold(writer)
    queued = asyncio.create_task(writer.submit(insert("queued")))
    await until(lambda: writer.queue_length == 1)
    assert writer._task is not None
    writer._task.cancel()
    with pytest.raises(ServiceUnavailable) as caught:
        await queued
    assert caught.value.reason == "writer_down"
    assert not writer.alive
    async with asyncio.timeout(1):
        with pytest.raises(ServiceUnavailable) as refused:
            await writer.submit(insert("refused"))
    assert refused.value.reason == "writer_down"
    with pytest.raises(OutcomeUnknown):
        await held
    await asyncio.sleep(0.3)
    assert writer.alive
    assert writer.restarts == 1
    assert await writer.submit(insert("after")) == "stored after"
    assert await committed_labels(observer) == ["after"]


# --- backpressure and shutdown ---------------------------------------------------------------


async def test_a_full_queue_refuses_at_once_with_503(
    make_writer: WriterFactory, observer: Database, metrics: Metrics
) -> None:
    writer = make_writer(queue_size=1)
    gate, held = await hold(writer)
    queued = asyncio.create_task(writer.submit(insert("queued")))
    await until(lambda: writer.queue_length == 1)
    assert writer.pressure == 1.0
    # A refusal must not wait for the writer: it is still held, so waiting would never end.
    async with asyncio.timeout(10):
        with pytest.raises(ServiceUnavailable) as caught:
            await writer.submit(insert("refused"))
    refused = caught.value
    assert refused.status == 503
    assert refused.reason == "writer_queue_full"
    assert refused.headers["Retry-After"] == "1"
    assert refused.detail == "storage is saturated; try again shortly"
    assert sample(metrics, "qatysu_writer_rejected_total") == 1.0
    gate.released.set()
    await held
    assert await queued == "stored queued"
    assert await committed_labels(observer) == ["queued"]


async def test_close_commits_every_queued_write_and_refuses_new_ones(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer()
    gate, held = await hold(writer)
    tasks = [asyncio.create_task(writer.submit(insert(f"w{n}"))) for n in range(3)]
    await until(lambda: writer.queue_length == 3)
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0)
    with pytest.raises(ServiceUnavailable) as caught:
        await writer.submit(insert("late"))
    assert caught.value.reason == "draining"
    assert caught.value.headers["Retry-After"] == "2"
    gate.released.set()
    await closing
    assert held.done()
    assert await asyncio.gather(*tasks) == ["stored w0", "stored w1", "stored w2"]
    assert await committed_labels(observer) == ["w0", "w1", "w2"]


async def test_a_caller_that_gives_up_does_not_cancel_its_queued_write(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer()
    gate, held = await hold(writer)
    impatient = asyncio.create_task(writer.submit(insert("abandoned")))
    await until(lambda: writer.queue_length == 1)
    impatient.cancel()
    gate.released.set()
    await held
    await writer.close()
    assert impatient.cancelled()
    assert await committed_labels(observer) == ["abandoned"]


async def test_batches_never_exceed_max_batch(
    make_writer: WriterFactory, observer: Database, metrics: Metrics
) -> None:
    writer = make_writer(max_batch=2)
    gate, held = await hold(writer)
    tasks = [asyncio.create_task(writer.submit(insert(f"b{n}"))) for n in range(5)]
    await until(lambda: writer.queue_length == 5)
    gate.released.set()
    await asyncio.gather(held, *tasks)
    # The gate alone, then 2 + 2 + 1.
    assert sample(metrics, "qatysu_writer_batch_size_count") == 4.0
    assert (
        metrics.registry.get_sample_value("qatysu_writer_batch_size_bucket", {"le": "2.0"}) == 4.0
    )
    assert len(await committed_labels(observer)) == 5


# --- batched kinds ---------------------------------------------------------------------------


async def test_batched_results_map_back_to_their_callers_in_order(
    make_writer: WriterFactory, observer: Database
) -> None:
    calls: list[list[str]] = []

    async def apply(conn: AsyncConnection, labels: Sequence[str]) -> list[str | BaseException]:
        calls.append(list(labels))
        results: list[str | BaseException] = []
        for label in labels:
            if label == "refused":
                results.append(LookupError("no such petition"))
                continue
            await conn.execute(items.insert().values(label=label))
            results.append(f"#{label}")
        return results

    kind: BatchKind[str, str] = BatchKind(name="labels", apply=apply)
    writer = make_writer()
    gate, held = await hold(writer)
    labels = ["k1", "k2", "refused", "k3", "k4"]
    tasks = [asyncio.create_task(writer.submit_batched(kind, label)) for label in labels]
    single = asyncio.create_task(writer.submit(insert("single")))
    await until(lambda: writer.queue_length == 6)
    gate.released.set()
    await held
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == [labels]
    assert results[:2] == ["#k1", "#k2"]
    assert isinstance(results[2], LookupError)
    assert str(results[2]) == "no such petition"
    assert results[3:] == ["#k3", "#k4"]
    assert await single == "stored single"
    assert await committed_labels(observer) == ["k1", "k2", "k3", "k4", "single"]


async def test_a_lone_batched_item_is_applied_and_committed(
    make_writer: WriterFactory, observer: Database
) -> None:
    async def apply(conn: AsyncConnection, labels: Sequence[str]) -> list[str]:
        await conn.execute(items.insert(), [{"label": label} for label in labels])
        return [f"#{label}" for label in labels]

    kind: BatchKind[str, str] = BatchKind(name="labels", apply=apply)
    writer = make_writer()
    assert await writer.submit_batched(kind, "alone") == "#alone"
    assert await committed_labels(observer) == ["alone"]
