"""Kazakhstan as shipped, as a jurisdiction object for tests that build a verifier themselves."""

from __future__ import annotations

from plugins.kazakhstan.jurisdiction import Kazakhstan
from plugins.kazakhstan.settings import KazakhstanSettings
from tests.support.services import SHIPPED_REGISTER


def kazakhstan() -> Kazakhstan:
    """Kazakhstan with the shipped register and the built-in thresholds and calendar."""
    return Kazakhstan(KazakhstanSettings.model_validate(SHIPPED_REGISTER))
