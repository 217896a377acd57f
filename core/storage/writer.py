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

**One write cannot fail another.** When a batch's transaction fails for a reason that one of its
writes may have caused (bad data, a constraint), the batch is split in halves and each half is
committed on its own, recursively: every other write commits, the culprit fails alone, and it
costs about 2·log2(n) extra transactions. Failures of storage as a whole (a timeout, a lost
connection, a full disk) are not split: they would only fail n times over.

**No false "not saved".** A failure before COMMIT was sent means nothing was saved and the
callers get 503 ``commit_failed``. A failure during COMMIT, or a timeout while the writer's thread
still runs the transaction, may or may not have committed: those callers get
``OutcomeUnknown``, which tells them to retry with the same ``Idempotency-Key``.

**A writer that stops is restarted.** The committing task holds nothing but its queue, and every
batch it took has been answered before it can stop. So if it ever ends while the server is not
closing (a bug, a stray cancellation), the queued writes get 503 at once, ``alive`` turns false
(readiness fails, new writes get 503 at once), and a fresh task starts after ``restart_delay``.
Restarting instead of exiting keeps reads, health and metrics answering meanwhile, and the
readiness probe tells the load balancer whenever the writer is down.
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

from sqlalchemy import exc as sa_exc

from core.storage.database import storage_failure
from core.storage.slots import release_for_commit
from core.wire.errors import Conflict, OutcomeUnknown, Problem, ServiceUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.observability.metrics import Metrics
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
        restart_delay: float = 1.0,
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
        self._restart_delay = restart_delay
        self._restart: asyncio.TimerHandle | None = None
        self.restarts = 0
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
    def alive(self) -> bool:
        """The committing task is running (false before start, after close, and while down)."""
        return self._task is not None and not self._task.done()

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
        self._restart = None
        self._task = asyncio.create_task(self._run(), name="qatysu-writer")
        self._task.add_done_callback(self._stopped)

    async def close(self) -> None:
        """Refuse new writes, commit everything already queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        if self._task is not None and not self._task.done():
            await self._task
        self._task = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if self._closing:
            return
        cause = None if task.cancelled() else task.exception()
        log.error("the writer stopped unexpectedly; restarting it", exc_info=cause)
        down = ServiceUnavailable(
            "storage is restarting; the write was not saved", retry_after=1, reason="writer_down"
        )
        while self._queue:
            _settle(self._queue.popleft().future, False, down)
        self.restarts += 1
        self._restart = asyncio.get_running_loop().call_later(self._restart_delay, self.start)

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, pending: _Pending) -> Any:
        if self._closing:
            raise ServiceUnavailable(
                "the server is shutting down", retry_after=2, reason="draining"
            )
        if not self.alive:
            raise ServiceUnavailable(
                "storage is restarting; try again shortly", retry_after=1, reason="writer_down"
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
            try:
                await self._commit(batch)
            except BaseException:
                # Stopped mid-batch: where it stopped, COMMIT may already have been sent.
                self._fail(batch, _Uncertain(RuntimeError("the writer stopped during the batch")))
                raise

    async def _commit(self, batch: list[_Pending]) -> None:
        if self._thread is not None:
            threaded = [p for p in batch if p.kind is not None and p.kind.apply_sync is not None]
            if threaded:
                await self._isolating(threaded, self._commit_in_thread)
                batch = [p for p in batch if p.kind is None or p.kind.apply_sync is None]
        if batch:
            await self._isolating(batch, self._commit_async)

    async def _isolating(
        self,
        batch: list[_Pending],
        commit: Callable[[list[_Pending]], Awaitable[Exception | None]],
    ) -> None:
        """Commit ``batch``; if one of its writes may have failed it, halve and commit apart."""
        try:
            failure = await commit(batch)
        except Exception as exc:
            # A bug in the writer itself: answer the batch rather than leave it waiting.
            failure = exc
        if failure is None:
            return
        if len(batch) == 1 or not _may_be_one_writes_fault(failure):
            self._fail(batch, failure)
            return
        log.warning(
            "a write batch of %d failed (%s); committing its halves apart",
            len(batch),
            type(failure).__name__,
        )
        middle = len(batch) // 2
        await self._isolating(batch[:middle], commit)
        await self._isolating(batch[middle:], commit)

    async def _commit_in_thread(self, batch: list[_Pending]) -> Exception | None:
        """Commit batched kinds in the writer's thread, one transaction, one hop."""
        assert self._thread is not None
        started = time.monotonic()
        groups: dict[BatchKind[Any, Any], list[_Pending]] = {}
        for pending in batch:
            assert pending.kind is not None
            groups.setdefault(pending.kind, []).append(pending)
        work = [(kind, [p.item for p in members]) for kind, members in groups.items()]
        committing = _Phase()
        try:
            async with asyncio.timeout(self._commit_timeout * 4):
                results = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._run_in_thread, work, committing
                )
        except TimeoutError as exc:
            # The thread runs on: its transaction may still commit after this answer.
            return _Uncertain(exc)
        except Exception as exc:
            return _Uncertain(exc) if committing.reached else exc
        self._observe_commit(len(batch), time.monotonic() - started)
        for members, kind_results in zip(groups.values(), results, strict=True):
            for pending, result in zip(members, kind_results, strict=True):
                _settle(pending.future, not isinstance(result, BaseException), result)
        return None

    def _run_in_thread(
        self, work: list[tuple[BatchKind[Any, Any], list[Any]]], committing: _Phase
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
            committing.reached = True
            return results

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        log.error("a write batch of %d failed to commit", len(batch), exc_info=exc)
        failure: Problem
        if isinstance(exc, _Uncertain):
            failure = OutcomeUnknown(
                "storage did not confirm the commit: the write may or may not be saved; "
                "retry with the same Idempotency-Key",
                retry_after=1,
            )
            failure.__cause__ = exc.cause
        else:
            failure = _commit_failed(exc)
        for pending in batch:
            _settle(pending.future, False, failure)

    def _observe_commit(self, size: int, elapsed: float) -> None:
        self._last_commit_seconds = elapsed
        if self._metrics is not None:
            self._metrics.writer_batch_size.observe(size)
            self._metrics.writer_commit_seconds.observe(elapsed)

    async def _commit_async(self, batch: list[_Pending]) -> Exception | None:
        started = time.monotonic()
        outcomes: dict[int, tuple[bool, Any]] = {}
        committing = _Phase()
        try:
            async with asyncio.timeout(self._commit_timeout * 4):
                async with self._database.transaction() as conn:
                    await self._apply(conn, batch, outcomes)
                    committing.reached = True
        except _SoleWriteFailed as failed:
            if isinstance(failed.cause, sa_exc.SQLAlchemyError):
                return failed.cause
            _settle(batch[0].future, False, failed.cause)
            return None
        except Exception as exc:
            return _Uncertain(exc) if committing.reached else exc
        self._observe_commit(len(batch), time.monotonic() - started)
        for index, pending in enumerate(batch):
            ok, value = outcomes[index]
            _settle(pending.future, ok, value)
        return None

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
                outcomes[index] = (False, _not_saved(exc))


@dataclass(slots=True)
class _Phase:
    """Set once every statement of a transaction has run and only COMMIT remains."""

    reached: bool = False


class _Uncertain(Exception):
    """The transaction failed during or after COMMIT: it may have committed."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _may_be_one_writes_fault(failure: Exception) -> bool:
    """False for failures of storage as a whole, which splitting the batch would only repeat."""
    return not isinstance(failure, _Uncertain) and not storage_failure(failure)


class _SoleWriteFailed(Exception):
    """The only write in a batch failed; its transaction is rolled back and it gets the error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _not_saved(exc: Exception) -> Exception:
    """A write's own failure as its caller should see it: a database error is never a 500."""
    if not isinstance(exc, sa_exc.SQLAlchemyError):
        return exc
    log.error("a write failed and was rolled back alone", exc_info=exc)
    return _commit_failed(exc)


def _commit_failed(cause: Exception) -> Problem:
    failure: Problem
    if isinstance(cause, sa_exc.IntegrityError):
        failure = Conflict("the write conflicts with what is stored; it was not saved")
    else:
        failure = ServiceUnavailable(
            "storage failed to commit the write; it was not saved",
            retry_after=1,
            reason="commit_failed",
        )
    failure.__cause__ = cause
    return failure


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
