"""Raw HTTP/1.1 over a socket, for tests that watch the connection layer byte by byte."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.host.server import RunningServer


def request(method: str, target: str, *extra: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: test", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if head_only or b" 304 " in head.split(b"\r\n", 1)[0]:
        return head
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, data: bytes, *, count: int = 1, head_only: bool = False) -> list[Any]:
        self.writer.write(data)
        return [parse(await read_response(self.reader, head_only=head_only)) for _ in range(count)]

    def close(self) -> None:
        self.writer.close()


async def connect(server: RunningServer) -> Connection:
    return Connection(*await asyncio.open_connection("127.0.0.1", server.port))


class LaneLog(logging.Handler):
    """The request ids of the answers the fast lane gave, from its access-log lines (which end in
    " lane"): what an operator reads of the lane. Its servers need ``server.access_log`` on."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.request_ids: list[str] = []
        self.streams = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.endswith(" lane stream"):
            self.streams += 1
        elif message.endswith(" lane"):
            self.request_ids.append(message.removesuffix(" lane").rpartition(" id=")[2])

    @property
    def count(self) -> int:
        """How many answers the lane gave."""
        return len(self.request_ids)

    def answered(self, request_ids: list[str]) -> int:
        """How many of the answers with these request ids the lane gave."""
        return len(set(request_ids) & set(self.request_ids))
