"""The group-commit writer: every acknowledged write is committed before it is acknowledged.

Requests hand their writes to one bounded queue and wait. One task takes whatever is waiting,
runs it all in a single transaction and commits; only then is each waiting request resolved. A
commit is the expensive part of a write (an fsync on SQLite), so one commit for hundreds of
writes is how a single process reaches thousands of durable writes per second.

Two kinds of write exist:

* a *single* write is a coroutine function run inside a SAVEPOINT, so a write that fails (a
  conflict, say) rolls back alone and its caller gets the exception;
* a *batched* write belongs to a ``BatchKind`` whose ``apply`` handles every item of that kind in
  the batch at once (one multi-row INSERT instead of hundreds), returning one result per item.
  A result that is an exception is raised to that item's caller.

A full queue refuses at once with 503, so a slow database turns into fast refusals, not memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core.admission.slots import release_for_commit
from core.errors import ServiceUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.metrics import Metrics
    from core.storage.database import Database

log = logging.getLogger(__name__)

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the conventional name for an item type
R = TypeVar("R")


@dataclass(frozen=True, eq=False, kw_only=True)
class BatchKind(Generic[I, R]):
    """A kind of write applied many items at a time, by exactly one of two functions.

    ``apply_sync`` takes a synchronous connection. On SQLite the writer runs it in a thread of
    its own with a synchronous engine, so a whole batch costs the event loop one thread hop
    instead of one per statement; on PostgreSQL it runs through ``AsyncConnection.run_sync``.
    ``apply`` is the async form, for kinds that must await something.
    """

    name: str
    apply: (
        Callable[[AsyncConnection, Sequence[I]], Awaitable[Sequence[R | BaseException]]] | None
    ) = None
    apply_sync: Callable[[Connection, Sequence[I]], Sequence[R | BaseException]] | None = None

    def __post_init__(self) -> None:
        if (self.apply is None) == (self.apply_sync is None):
            raise ValueError(f"batch kind {self.name} needs exactly one of apply and apply_sync")


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Any]
    single: Callable[[AsyncConnection], Awaitable[Any]] | None = None
    kind: BatchKind[Any, Any] | None = None
    item: Any = None
    enqueued: float = field(default_factory=time.monotonic)


class Writer:
    """One bounded queue and one committing task."""

    def __init__(
        self,
        database: Database,
        *,
        queue_size: int,
        max_batch: int,
        metrics: Metrics | None = None,
        commit_timeout: float = 5.0,
    ) -> None:
        self._database = database
        self._queue: deque[_Pending] = deque()
        self._queue_size = queue_size
        self._max_batch = max_batch
        self._metrics = metrics
        self._commit_timeout = commit_timeout
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._last_commit_seconds = 0.0
        self._thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="qatysu-writer")
            if database.sync_engine is not None
            else None
        )

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    @property
    def pressure(self) -> float:
        """How close storage is to saturation: 1.0 when the queue is full or commits are slow."""
        fill = len(self._queue) / self._queue_size
        slowness = self._last_commit_seconds / self._commit_timeout
        return min(1.0, max(fill, slowness))

    async def submit(self, write: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``write`` in the next transaction; return its result once committed."""
        result: T = await self._enqueue(_Pending(self._future(), single=write))
        return result

    async def submit_batched(self, kind: BatchKind[I, R], item: I) -> R:
        """Add ``item`` to the next batch of ``kind``; return its result once committed."""
        result: R = await self._enqueue(_Pending(self._future(), kind=kind, item=item))
        return result

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="qatysu-writer")

    async def close(self) -> None:
        """Refuse new writes, commit everything already queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, pending: _Pending) -> Any:
        if self._closing:
            raise ServiceUnavailable(
                "the server is shutting down", retry_after=2, reason="draining"
            )
        if len(self._queue) >= self._queue_size:
            if self._metrics is not None:
                self._metrics.writer_rejected.inc()
            raise ServiceUnavailable(
                "storage is saturated; try again shortly", retry_after=1, reason="writer_queue_full"
            )
        self._queue.append(pending)
        self._wakeup.set()
        release_for_commit()
        # The caller must not cancel a write that is already queued: it may commit regardless,
        # so shield it and let the outcome land in the future either way.
        return await asyncio.shield(pending.future)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            if self._metrics is not None:
                self._metrics.writer_queue_length.set(len(self._queue))
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        if self._thread is not None:
            threaded = [p for p in batch if p.kind is not None and p.kind.apply_sync is not None]
            if threaded:
                await self._commit_in_thread(threaded)
                batch = [p for p in batch if p.kind is None or p.kind.apply_sync is None]
        if batch:
            await self._commit_async(batch)

    async def _commit_in_thread(self, batch: list[_Pending]) -> None:
        """Commit batched kinds in the writer's thread, one transaction, one hop."""
        assert self._thread is not None
        started = time.monotonic()
        groups: dict[BatchKind[Any, Any], list[_Pending]] = {}
        for pending in batch:
            assert pending.kind is not None
            groups.setdefault(pending.kind, []).append(pending)
        work = [(kind, [p.item for p in members]) for kind, members in groups.items()]
        try:
            async with asyncio.timeout(self._commit_timeout * 4):
                results = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._run_in_thread, work
                )
        except Exception as exc:
            self._fail(batch, exc)
            return
        self._observe_commit(len(batch), time.monotonic() - started)
        for members, kind_results in zip(groups.values(), results, strict=True):
            for pending, result in zip(members, kind_results, strict=True):
                _settle(pending.future, not isinstance(result, BaseException), result)

    def _run_in_thread(
        self, work: list[tuple[BatchKind[Any, Any], list[Any]]]
    ) -> list[Sequence[Any]]:
        engine = self._database.sync_engine
        assert engine is not None
        with engine.begin() as conn:
            results = []
            for kind, items in work:
                assert kind.apply_sync is not None
                kind_results = kind.apply_sync(conn, items)
                if len(kind_results) != len(items):
                    raise RuntimeError(
                        f"batch kind {kind.name} returned {len(kind_results)} results"
                    )
                results.append(kind_results)
            return results

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        log.exception("a write batch of %d failed to commit", len(batch), exc_info=exc)
        failure = ServiceUnavailable(
            "storage failed to commit the write; it was not saved",
            retry_after=1,
            reason="commit_failed",
        )
        failure.__cause__ = exc
        for pending in batch:
            _settle(pending.future, False, failure)

    def _observe_commit(self, size: int, elapsed: float) -> None:
        self._last_commit_seconds = elapsed
        if self._metrics is not None:
            self._metrics.writer_batch_size.observe(size)
            self._metrics.writer_commit_seconds.observe(elapsed)

    async def _commit_async(self, batch: list[_Pending]) -> None:
        started = time.monotonic()
        outcomes: dict[int, tuple[bool, Any]] = {}
        try:
            async with asyncio.timeout(self._commit_timeout * 4):
                async with self._database.transaction() as conn:
                    await self._apply(conn, batch, outcomes)
        except _SoleWriteFailed as failed:
            _settle(batch[0].future, False, failed.cause)
            return
        except Exception as exc:
            self._fail(batch, exc)
            return
        self._observe_commit(len(batch), time.monotonic() - started)
        for index, pending in enumerate(batch):
            ok, value = outcomes[index]
            _settle(pending.future, ok, value)

    async def _apply(
        self, conn: AsyncConnection, batch: list[_Pending], outcomes: dict[int, tuple[bool, Any]]
    ) -> None:
        by_kind: dict[BatchKind[Any, Any], list[int]] = {}
        singles: list[int] = []
        for index, pending in enumerate(batch):
            if pending.kind is not None:
                by_kind.setdefault(pending.kind, []).append(index)
            else:
                singles.append(index)
        for kind, indexes in by_kind.items():
            items = [batch[i].item for i in indexes]
            if kind.apply is not None:
                results = await kind.apply(conn, items)
            else:
                assert kind.apply_sync is not None
                results = await conn.run_sync(kind.apply_sync, items)
            if len(results) != len(indexes):
                raise RuntimeError(f"batch kind {kind.name} returned {len(results)} results")
            for index, result in zip(indexes, results, strict=True):
                outcomes[index] = (not isinstance(result, BaseException), result)
        isolate = len(singles) > 1 or bool(by_kind)
        for index in singles:
            write = batch[index].single
            assert write is not None
            try:
                if isolate:
                    async with conn.begin_nested():
                        outcomes[index] = (True, await write(conn))
                else:
                    outcomes[index] = (True, await write(conn))
            except Exception as exc:
                if not isolate:
                    raise _SoleWriteFailed(exc) from exc
                outcomes[index] = (False, exc)


class _SoleWriteFailed(Exception):
    """The only write in a batch failed; its transaction is rolled back and it gets the error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
