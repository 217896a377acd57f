"""Logging for every command: plain lines by default, or one JSON object per line.

JSON lines carry the time, level, logger and message, the traceback when there is one, and the
fields an access-log line adds (client, method, path, status, duration_ms, request_id), so a log
shipper can index them without parsing the message.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Literal

import orjson

LogFormat = Literal["text", "json"]
LOG_LEVELS = ("debug", "info", "warning", "error")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Attributes an access-log line passes through ``extra``.
ACCESS_FIELDS = ("client", "method", "path", "status", "duration_ms", "request_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ACCESS_FIELDS:
            if field in record.__dict__:
                entry[field] = record.__dict__[field]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, as ``logging.lastResort`` does."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "info", log_format: LogFormat = "text") -> None:
    """Log to stderr in the chosen format from the chosen level up; calling again replaces it.

    As with ``logging.basicConfig``, handlers someone else installed (an embedding program's, a
    test runner's) are left to do the writing; only the level is set then.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    ours = [h for h in root.handlers if isinstance(h, StderrHandler)]
    if len(ours) < len(root.handlers):
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = StderrHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root.addHandler(handler)
