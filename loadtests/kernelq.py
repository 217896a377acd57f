"""The kernel's side of a flood, read from /proc: the listener's accept queue and dropped SYNs.

``ListenOverflows`` (``/proc/net/netstat``, TcpExt) counts the handshakes the kernel dropped
because an accept queue was full; the client retries its SYN after a second, so each is a
request that waits a second or more, or is never answered. It is system-wide: read before and
after a step, on a machine where nothing else floods a listener, it is the step's.

The accept queue of the listener a flood aims at is in ``/proc/net/tcp``: for a socket in
LISTEN state (``0A``) the ``rx_queue`` column is the connections waiting for ``accept()``. A
thread samples it ten times a second for the peak and the mean (a read costs a few ms of the
generator's core with thousands of connections open, so no faster).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

NETSTAT = Path("/proc/net/netstat")
TCP_TABLE = Path("/proc/net/tcp")
_LISTEN = "0A"


def listen_overflows(netstat: Path = NETSTAT) -> int | None:
    """The system's ListenOverflows counter, or None where it cannot be read."""
    try:
        lines = netstat.read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if not names.startswith("TcpExt:"):
            continue
        table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
        found = table.get("ListenOverflows")
        return None if found is None else int(found)
    return None


def accept_queue_length(port: int, table: str) -> int | None:
    """The accept-queue length of the listener on ``port`` in a /proc/net/tcp ``table``."""
    local = f":{port:04X} "
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5 or fields[3] != _LISTEN or not (fields[1] + " ").endswith(local):
            continue
        return int(fields[4].partition(":")[2], 16)
    return None


@dataclass
class AcceptQueueWatch:
    """Samples the accept queue of the listener on ``port`` every ``period`` s in a thread."""

    port: int
    period: float = 0.1
    table: Path = TCP_TABLE
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> AcceptQueueWatch:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.period):
            try:
                length = accept_queue_length(self.port, self.table.read_text())
            except OSError:
                return
            if length is not None:
                self.samples.append(length)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    @property
    def peak(self) -> int | None:
        return max(self.samples) if self.samples else None

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None
