from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.information.helpers import information_client


@pytest.fixture
async def client(make_client: Any, database_url: str) -> Any:
    """The full app with the information channel, on each database."""
    return await information_client(make_client, database_url)
