"""The slot a request holds, so that a write can give it back while it waits for its commit.

A signature spends microseconds of CPU and then milliseconds waiting for the group commit. If
it kept its concurrency slot while waiting, the slots would measure commit latency, the limit
would cap the batch size, and reads would queue behind commits that use no CPU. So the writer
calls ``release_for_commit()`` before it waits: the slot (and its latency sample) covers the
handler's own work, and the writer's bounded queue bounds the writes waiting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol


class Ticket(Protocol):
    """A slot held by a request (``core.admission.controller.Ticket``); storage sits below
    admission, so it names only what it calls."""

    def release(self) -> None: ...


_HELD: ContextVar[Ticket | None] = ContextVar("qatysu_admission_ticket", default=None)


@contextlib.contextmanager
def holding(ticket: Ticket) -> Iterator[None]:
    """Make ``ticket`` the slot the current task holds while the block runs."""
    token = _HELD.set(ticket)
    try:
        yield
    finally:
        _HELD.reset(token)


def release_for_commit() -> None:
    """Give back the current task's slot, if it holds one; later releases are harmless."""
    ticket = _HELD.get()
    if ticket is not None:
        ticket.release()
