"""Counters read before and after a step, so that every refusal is attributed to its layer.

Qatysu's ``/metrics`` gives, among others, ``qatysu_admission_rejected_total{reason,priority}``
(edge, queue_full, codel, deadline, disconnected, writer_pressure, connections...),
``qatysu_ratelimit_limited_total{policy}`` and ``qatysu_http_requests_total{status}``. HAProxy's
stats page gives its own: a 503 that HAProxy answered itself (queue timeout or maxqueue) shows as
a frontend 5xx that the server never sent.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Counters = dict[str, float]

# The HAProxy stats fields worth a delta: responses by class, errors, aborts and queue use.
HAPROXY_FIELDS = (
    "stot",
    "hrsp_2xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "ereq",
    "econ",
    "eresp",
    "dreq",
    "cli_abrt",
    "srv_abrt",
    "wretr",
    "wredis",
    "qmax",
)


def fetch(url: str, *, timeout: float = 5.0, patience: float = 20.0) -> str:
    """The body at ``url``, asking again while the server refuses (503) or cannot be reached.

    Right after a flood a server may still refuse new connections; its counters only grow, so
    a later reading is as good as an earlier one.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                text: str = response.read().decode("utf-8", "replace")
                return text
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def parse_counters(text: str, prefix: str = "qatysu_") -> Counters:
    """Every counter sample of the exposition whose name starts with ``prefix``."""
    counters: Counters = {}
    for family in text_string_to_metric_families(text):
        if family.type != "counter" or not family.name.startswith(prefix):
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            counters[f"{sample.name}{{{labels}}}"] = sample.value
    return counters


def parse_haproxy_csv(text: str) -> Counters:
    """``proxy/server.field`` for the fields above, from HAProxy's ``/stats;csv``."""
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    counters: Counters = {}
    for row in rows:
        name = f"{row.get('pxname', '')}/{row.get('svname', '')}"
        for field in HAPROXY_FIELDS:
            value = row.get(field) or ""
            if value.isdigit():
                counters[f"{name}.{field}"] = float(value)
    return counters


def delta(before: Mapping[str, float], after: Mapping[str, float]) -> Counters:
    """What grew between two readings; counters that did not move are left out."""
    grown: Counters = {}
    for key, value in after.items():
        change = value - before.get(key, 0.0)
        if change:
            grown[key] = change
    return grown


def refusals_by_layer(qatysu: Mapping[str, float], haproxy: Mapping[str, float]) -> Counters:
    """Refusals in one step, summed by where they happened.

    ``admission:<reason>`` from Qatysu's admission counter, ``ratelimit`` for its 429s, and
    ``proxy:503`` for the 5xx HAProxy answered without the server (frontend 5xx minus the
    server's).
    """
    layers: Counters = {}
    for key, value in qatysu.items():
        if key.startswith("qatysu_admission_rejected_total{"):
            reason = _label(key, "reason")
            layers[f"admission:{reason}"] = layers.get(f"admission:{reason}", 0.0) + value
        elif key.startswith("qatysu_ratelimit_limited_total{"):
            layers["ratelimit"] = layers.get("ratelimit", 0.0) + value
    frontend = haproxy.get("citizens/FRONTEND.hrsp_5xx", 0.0)
    server = haproxy.get("qatysu/qatysu.hrsp_5xx", 0.0)
    if frontend - server > 0:
        layers["proxy:503"] = frontend - server
    return layers


def _label(key: str, name: str) -> str:
    inside = key[key.index("{") + 1 : -1]
    for pair in inside.split(","):
        label, _, value = pair.partition("=")
        if label == name:
            return value
    return "?"
