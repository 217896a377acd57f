"""Identifiers of the resources citizens and officials create."""

from __future__ import annotations

import secrets


def new_id() -> str:
    """An unguessable id: a restricted petition is reachable by its link alone."""
    return secrets.token_urlsafe(12)
