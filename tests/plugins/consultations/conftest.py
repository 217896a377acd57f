from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.consultations.helpers import plugin_settings


@pytest.fixture
async def client(make_client: Any, database_url: str) -> Any:
    """The full app with the consultations plugin, on each database."""
    return await make_client(database_url, plugins=plugin_settings())
