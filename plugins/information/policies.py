"""Admission policies of the information routes: writes critical, single reads normal, lists and
search sheddable. Items and requests share the read and list budgets."""

from __future__ import annotations

from core.sdk import critical, normal, sheddable

PUBLISH = critical("information-publish", rate=10.0, burst=50)
REPLY = critical("information-reply", rate=10.0, burst=50)
FILE = critical("information-request-file", rate=0.05, burst=5)
READ = normal("information-read", rate=50.0, burst=100)
LIST = sheddable("information-list", rate=10.0, burst=20)
