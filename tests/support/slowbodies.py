"""Raw-socket requests whose body arrives slowly or never: the slow-body attack, piece by piece."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

# The start of a petition, as the attack sends it: ten bytes of the 400 announced.
FIRST_BYTES = b'{"title": '


@dataclass
class SlowBody:
    """One open connection that has sent a request head and part of its body."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, within: float) -> bytes:
        """The server's problem+json answer (its body is one flat JSON object)."""
        return await asyncio.wait_for(self.reader.readuntil(b"}"), within)

    async def closed(self, within: float) -> bytes:
        """Whatever else the server sends until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), within)

    def close(self) -> None:
        self.writer.close()


async def slow_body(
    port: int,
    *,
    path: str = "/api/v1/petitions",
    headers: Mapping[str, str] | None = None,
    announced: int = 400,
    sent: bytes = FIRST_BYTES,
) -> SlowBody:
    """A POST to ``path`` announcing ``announced`` body bytes, of which only ``sent`` are sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [
        f"POST {path} HTTP/1.1",
        "Host: qatysu.test",
        "Content-Type: application/json",
        f"Content-Length: {announced}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    request = SlowBody(reader, writer)
    await request.send(("\r\n".join(head) + "\r\n\r\n").encode() + sent)
    return request


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP/1.1 answer."""
    return int(answer.split(b" ", 2)[1])
