"""The watchers of ``python -m loadtests.bench watchers``, spread over client processes.

One process cannot hold 10,000 streams on each of two instances: its file limit (the hard
limit, 20,000 on the development machines) counts every socket. So the watchers live in
several client processes, each raising its own soft limit to what it needs and holding at most
what that allows; the benchmark's main process only signs and reads the servers' figures.
Each client is one asyncio loop of raw protocols (uvloop when installed), pinned to the
generator's core, driven by commands over a pipe (``ClientPool``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import multiprocessing
import os
import resource
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

OPEN_BATCH = 100
# Descriptors a process keeps besides its sockets (the interpreter, the loop, the pipe, logs).
SPARE_FDS = 200


# -- the file limit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileLimit:
    """This process's RLIMIT_NOFILE after asking for ``needed``: what it got, and the hard
    limit that bounds it."""

    needed: int
    soft: int
    hard: int

    @property
    def enough(self) -> bool:
        return self.soft >= self.needed

    def describe(self, what: str) -> str:
        if self.enough:
            return f"{what}: file limit {self.soft} (needed {self.needed}, hard {self.hard})"
        return (
            f"{what}: NEEDS {self.needed} open files but the hard limit is {self.hard}"
            f" (soft now {self.soft}); raise it (ulimit -Hn, limits.conf, LimitNOFILE=)"
        )


def raise_file_limit(needed: int) -> FileLimit:
    """Raise the soft RLIMIT_NOFILE to ``needed``, as far as the hard limit allows; never
    lower it. Child processes inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = hard == resource.RLIM_INFINITY
    target = needed if unlimited else min(needed, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FileLimit(needed=needed, soft=soft, hard=hard)


def file_limit_of(pid: int) -> int | None:
    """The soft open-files limit of a running process, from ``/proc``."""
    try:
        with open(f"/proc/{pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


def split(total: int, per_process: int) -> list[int]:
    """``total`` watchers in as few processes as hold at most ``per_process`` each, evenly."""
    if total <= 0:
        return []
    processes = -(-total // max(1, per_process))
    base, extra = divmod(total, processes)
    return [base + (1 if index < extra else 0) for index in range(processes)]


# -- what the watchers saw --------------------------------------------------------------------


@dataclass
class Tally:
    """What every watcher of one kind in one process saw."""

    events: int = 0
    went_down: int = 0
    counting: bool = False
    # While the signing throughput is measured the watchers only read their sockets: parsing
    # what they read would take the generator's core from the signers.
    quiet: bool = False
    made: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    # Every (count, time received) of a sample of watchers, for the lag.
    sampled: list[list[tuple[int, float]]] = field(default_factory=list)

    def saw(self, count: int, previous: int, record: list[tuple[int, float]] | None) -> None:
        if count < previous:
            self.went_down += 1
        if not self.counting:
            return
        self.events += 1
        if record is not None:
            record.append((count, time.time()))

    def recorder(self, every: int = 50) -> list[tuple[int, float]] | None:
        """A record for one watcher in ``every``."""
        self.made += 1
        if (self.made - 1) % every:
            return None
        record: list[tuple[int, float]] = []
        self.sampled.append(record)
        return record


def commit_lags(
    sampled: list[list[tuple[int, float]]], commits: dict[int, float], since: float, until: float
) -> list[float]:
    """For each commit in the window and each sampled watcher: from the commit's 201 to the
    first event the watcher received carrying that count or a later one."""
    lags = []
    window = sorted((c, t) for c, t in commits.items() if since <= t <= until)
    for record in sampled:
        counts = [count for count, _ in record]
        for count, committed in window:
            at = bisect.bisect_left(counts, count)
            if at < len(record):
                lags.append(max(0.0, record[at][1] - committed))
    return lags


_COUNT = b'"signature_count":'


def counts_in(data: bytes) -> list[int]:
    found, start = [], 0
    while (at := data.find(_COUNT, start)) >= 0:
        at += len(_COUNT)
        end = at
        while end < len(data) and data[end : end + 1].isdigit():
            end += 1
        if end > at:
            found.append(int(data[at:end]))
        start = end
    return found


class StreamWatcher(asyncio.Protocol):
    """One ``/live`` stream: counts each event, checks that counts never go down."""

    def __init__(self, head: bytes, tally: Tally, first: asyncio.Future[None]) -> None:
        self.head, self.tally, self.first = head, tally, first
        self.buffer = b""
        self.last = -1
        self.record = tally.recorder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.head)

    def data_received(self, data: bytes) -> None:
        if self.tally.quiet:
            # Counts resume being checked from the next whole event on.
            self.buffer = b""
            return
        self.buffer += data
        if not self.first.done():
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 200"):
                status = self.buffer[9:12].decode("latin-1")
                self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
                self.first.set_result(None)
                return
            self.first.set_result(None)
        end = self.buffer.rfind(b"\n\n")
        if end < 0:
            return
        whole, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
        for count in counts_in(whole):
            self.tally.saw(count, self.last, self.record)
            self.last = max(self.last, count)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.first.done():
            self.first.set_result(None)

    @property
    def streaming(self) -> bool:
        return self.last >= 0 and self.transport is not None and not self.transport.is_closing()


class Poller(asyncio.Protocol):
    """One kept-alive connection reading the petition once per interval."""

    def __init__(self, head: bytes, tally: Tally) -> None:
        self.head, self.tally = head, tally
        self.buffer = b""
        self.last = -1
        self.transport: asyncio.Transport | None = None
        self.answered = 0
        self.record = tally.recorder()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def poll(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.head)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 : head.find(b"\r\n", at)]) if at >= 0 else 0
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            self.answered += 1
            for count in counts_in(body):
                self.tally.saw(count, self.last, self.record)
                self.last = max(self.last, count)


# -- one client process -----------------------------------------------------------------------


class _Client:
    """The watchers of one process, and the commands the benchmark sends it."""

    def __init__(self) -> None:
        self.stream = Tally()
        self.poll = Tally()
        self.watchers: list[StreamWatcher] = []
        self.pollers: list[Poller] = []

    async def streams(self, port: int, petition_id: str, wanted: int, patience: float) -> Any:
        """Open ``wanted`` streams; a refused one retries after a second, as a client honouring
        ``Retry-After`` would, until ``patience`` runs out."""
        loop = asyncio.get_running_loop()
        head = (
            f"GET /api/v1/petitions/{petition_id}/live HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        opened, errors = 0, 0
        give_up = time.monotonic() + patience
        # A burst of connections is an overload to the server, which then refuses new streams
        # until it is over: the batch halves after a refusal and grows while none come.
        size = OPEN_BATCH // 2
        while opened < wanted and time.monotonic() < give_up:
            batch = min(size, wanted - opened)
            firsts = [loop.create_future() for _ in range(batch)]
            made = await asyncio.gather(
                *(
                    loop.create_connection(
                        lambda f=first: StreamWatcher(head, self.stream, f), "127.0.0.1", port
                    )
                    for first in firsts
                ),
                return_exceptions=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*firsts), timeout=30)
            # The first event follows the head at once.
            await asyncio.sleep(0.05)
            refused = 0
            for result in made:
                if isinstance(result, BaseException):
                    refused += 1
                    errors += 1
                    continue
                transport, watcher = result
                if watcher.streaming:
                    self.watchers.append(watcher)
                    opened += 1
                else:
                    transport.close()
                    refused += 1
            if refused:
                size = max(5, size // 2)
                await asyncio.sleep(1.0)
            else:
                size = min(OPEN_BATCH, size + 10)
        return {"opened": opened, "statuses": dict(self.stream.statuses), "errors": errors}

    async def pollers_open(self, port: int, petition_id: str, wanted: int) -> Any:
        loop = asyncio.get_running_loop()
        head = (
            f"GET /api/v1/petitions/{petition_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        ).encode()
        failed = 0
        for start in range(0, wanted, OPEN_BATCH):
            batch = min(OPEN_BATCH, wanted - start)
            made = await asyncio.gather(
                *(
                    loop.create_connection(lambda: Poller(head, self.poll), "127.0.0.1", port)
                    for _ in range(batch)
                ),
                return_exceptions=True,
            )
            for result in made:
                if isinstance(result, BaseException):
                    failed += 1
                else:
                    self.pollers.append(result[1])  # type: ignore[arg-type]
        return {"opened": len(self.pollers), "failed": failed}

    async def poll_for(self, interval: float, seconds: float) -> Any:
        """Each poller once per interval, spread evenly over it."""
        pollers = self.pollers
        before = sum(p.answered for p in pollers)
        if pollers:
            step = interval / len(pollers)
            start = time.monotonic()
            index = 0
            while time.monotonic() - start < seconds:
                due = int((time.monotonic() - start) / step)
                while index < due:
                    pollers[index % len(pollers)].poll()
                    index += 1
                await asyncio.sleep(0.005)
        return {"sent_window": sum(p.answered for p in pollers) - before}

    def quiet(self, on: bool) -> Any:
        self.stream.quiet = on
        return None

    def counting(self, on: bool) -> Any:
        for tally in (self.stream, self.poll):
            tally.counting = on
        if on:
            return None
        return {
            "stream": _tally_figures(self.stream),
            "poll": _tally_figures(self.poll),
            "answered": sum(p.answered for p in self.pollers),
            "streaming": sum(1 for w in self.watchers if w.streaming),
        }

    def close(self, kind: str) -> Any:
        protocols: list[Any] = self.watchers if kind == "streams" else self.pollers
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        protocols.clear()
        # A fresh tally for the next phase; the sample of the last one was reported.
        if kind == "streams":
            self.stream = Tally()
        else:
            self.poll = Tally()
        return None


def _tally_figures(tally: Tally) -> dict[str, Any]:
    return {"events": tally.events, "went_down": tally.went_down, "sampled": tally.sampled}


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    client = _Client()
    commands: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    while True:
        name, *arguments = await commands.get()
        if name == "quit":
            conn.send(None)
            return
        if name == "streams":
            result = await client.streams(*arguments)
        elif name == "pollers":
            result = await client.pollers_open(*arguments)
        elif name == "poll":
            result = await client.poll_for(*arguments)
        elif name == "quiet":
            result = client.quiet(*arguments)
        elif name == "counting":
            result = client.counting(*arguments)
        elif name == "close":
            result = client.close(*arguments)
            await asyncio.sleep(0.5)
        else:
            result = {"error": f"unknown command {name}"}
        conn.send(result)


def client_main(conn: Connection, cpu: int | None, needed_files: int) -> None:
    """A client process: pin, raise the file limit, serve commands until ``quit``."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    limit = raise_file_limit(needed_files)
    conn.send(limit)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve(conn))


async def _answer(pipe: Connection) -> Any:
    """The next answer on ``pipe``, read when it arrives, without a thread."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(pipe.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(pipe.fileno())
    return pipe.recv()


class ClientPool:
    """Client processes, each told what to do over its pipe; calls go to all at once."""

    def __init__(self, count: int, *, cpu: int | None, needed_files: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        self.limits: list[FileLimit] = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=client_main, args=(theirs, cpu, needed_files), daemon=True
            )
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)
        for pipe in self.pipes:
            self.limits.append(pipe.recv())

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    async def each(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands[i]`` to client ``i``; their answers, once all have answered."""
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)
        return list(await asyncio.gather(*(_answer(pipe) for pipe in self.pipes)))

    async def one_by_one(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands[i]`` to client ``i``, each once the one before has answered."""
        answers = []
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)
            answers.append(await _answer(pipe))
        return answers

    async def all(self, *command: Any) -> list[Any]:
        return await self.each([command] * len(self.pipes))

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, EOFError):
                pipe.send(("quit",))
                if pipe.poll(10):
                    pipe.recv()
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
