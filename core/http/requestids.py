"""Request ids: a client's own when it is safe to echo, otherwise one of this process's."""

from __future__ import annotations

import itertools
import os
import re

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_PREFIX = os.urandom(4).hex()
_COUNTER = itertools.count(1)


def request_id_for(incoming: str | None) -> str:
    """The id to log and answer with: ``incoming`` when it is short and plain, else a new one."""
    if incoming is not None and _SAFE_REQUEST_ID.match(incoming):
        return incoming
    return f"{_PREFIX}-{next(_COUNTER)}"
