"""The installed Qatysu version, for ``qatysu --version`` and ``qatysu_build_info``."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def qatysu_version() -> str:
    try:
        return version("qatysu")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"
