"""A write that holds the writer, for the writer tests and the floods that queue behind it."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncConnection


class Gate:
    """A write that holds the writer inside its transaction until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self, conn: AsyncConnection) -> str:
        self.entered.set()
        await self.released.wait()
        return "gate passed"
