"""Assertions on problem+json answers."""

from __future__ import annotations

from typing import Any

PROBLEM_FIELDS = {"type", "title", "status", "detail"}


async def problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is a problem+json of ``status`` and return its body."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json", text
    body: dict[str, Any] = await response.json(content_type=None)
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"]
    assert body["detail"]
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]
