"""Reading server-sent events in tests: one event (or heartbeat comment) at a time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from aiohttp import ClientResponse


@dataclass
class Event:
    name: str = "message"
    id: int | None = None
    data: Any = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)


class EventReader:
    """Parses the stream of ``response`` into events; ``next`` waits for the next one."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def next(self, within: float = 5.0) -> Event | None:
        """The next event, a comment-only block as an event named ``comment``, or None at the
        end of the stream."""
        async with asyncio.timeout(within):
            event = Event()
            seen = False
            while True:
                line = await self.response.content.readline()
                if not line:
                    return event if seen else None
                text = line.decode().rstrip("\n")
                if text == "":
                    if seen:
                        if event.data is None and event.retry is None and event.comments:
                            event.name = "comment"
                        return event
                    continue
                seen = True
                key, _, value = text.partition(":")
                value = value.removeprefix(" ")
                if key == "":
                    event.comments.append(value)
                elif key == "id":
                    event.id = int(value)
                elif key == "event":
                    event.name = value
                elif key == "data":
                    event.data = orjson.loads(value)
                elif key == "retry":
                    event.retry = int(value)

    async def next_named(self, *names: str, within: float = 5.0) -> Event | None:
        """The next event with one of ``names``, skipping others; None at the end."""
        async with asyncio.timeout(within):
            while True:
                event = await self.next(within=within)
                if event is None or event.name in names:
                    return event

    async def rest(self, within: float = 5.0) -> list[Event]:
        """Every event until the end of the stream."""
        events = []
        async with asyncio.timeout(within):
            while (event := await self.next(within=within)) is not None:
                events.append(event)
        return events
