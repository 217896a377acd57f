"""The group-commit writer: nothing is acknowledged before it is committed; failures stay local."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import ServiceUnavailable
from core.metrics import Metrics
from core.storage.database import Database
from core.storage.migrations import Migration, MigrationSet, create_tables, migrate
from core.storage.writer import BatchKind, Writer

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

    def factory(*, queue_size: int = 100, max_batch: int = 64) -> Writer:
        writer = Writer(database, queue_size=queue_size, max_batch=max_batch, metrics=metrics)
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


class Gate:
    """A write that holds the writer inside its transaction until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self, conn: AsyncConnection) -> str:
        self.entered.set()
        await self.released.wait()
        return "gate passed"


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


async def test_a_sole_write_that_breaks_a_constraint_gets_the_database_error(
    make_writer: WriterFactory, observer: Database
) -> None:
    writer = make_writer()
    await writer.submit(insert("taken"))
    with pytest.raises(IntegrityError):
        await writer.submit(insert("taken"))
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
        assert isinstance(bad, IntegrityError)
    assert await committed_labels(observer) == ["one", "taken", "two"]
    # The three shared one commit.
    assert sample(metrics, "qatysu_writer_batch_size_count") == 3.0
    assert sample(metrics, "qatysu_writer_batch_size_sum") == 5.0


async def test_a_batch_that_cannot_commit_fails_every_caller_with_503_and_is_logged(
    make_writer: WriterFactory, observer: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def miscounting(conn: AsyncConnection, labels: Sequence[str]) -> list[str]:
        await conn.execute(items.insert(), [{"label": label} for label in labels])
        return ["only one result"]

    kind: BatchKind[str, str] = BatchKind(name="miscounting", apply=miscounting)
    writer = make_writer()
    gate, held = await hold(writer)
    tasks = [
        asyncio.create_task(writer.submit_batched(kind, "a")),
        asyncio.create_task(writer.submit_batched(kind, "b")),
        asyncio.create_task(writer.submit(insert("single"))),
    ]
    await until(lambda: writer.queue_length == 3)
    with caplog.at_level(logging.ERROR, logger="core.storage.writer"):
        gate.released.set()
        await held
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        assert isinstance(result, ServiceUnavailable)
        assert result.status == 503
        assert result.reason == "commit_failed"
        assert result.detail == "storage failed to commit the write; it was not saved"
    assert await committed_labels(observer) == []
    assert "a write batch of 3 failed to commit" in caplog.text


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
