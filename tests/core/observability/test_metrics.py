"""The metrics registry: core's own metrics, and counters that plugins declare in it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from core.observability import keys as observability_keys
from core.observability.metrics import Metrics
from core.observability.metrics_exposure import metrics_handler
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.routing import RouteRegistry
from core.storage import keys as storage_keys


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def test_a_declared_counter_is_exposed_at_zero_before_anything_counts() -> None:
    metrics = Metrics()
    metrics.add_counter("qatysu_widgets_made_total", "Widgets made.")

    lines = metrics.exposition().decode().splitlines()

    assert "# HELP qatysu_widgets_made_total Widgets made." in lines
    assert "qatysu_widgets_made_total 0.0" in lines


def test_a_declared_counter_counts_in_the_registry() -> None:
    metrics = Metrics()
    declared = metrics.add_counter("qatysu_widgets_made_total", "Widgets made.")

    declared.inc()
    declared.inc(2)

    assert metrics.registry.get_sample_value("qatysu_widgets_made_total") == 3.0


def test_a_declared_counter_may_have_labels() -> None:
    metrics = Metrics()
    declared = metrics.add_counter("qatysu_widgets_made_total", "Widgets made.", ["colour"])

    declared.labels("red").inc()

    sample = metrics.registry.get_sample_value
    assert sample("qatysu_widgets_made_total", {"colour": "red"}) == 1.0
    assert sample("qatysu_widgets_made_total", {"colour": "blue"}) is None


def test_a_counter_without_the_qatysu_prefix_is_refused() -> None:
    refused = "metric 'widgets_total': every metric name starts with 'qatysu_'"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        Metrics().add_counter("widgets_total", "Widgets.")


def test_a_counter_declared_twice_is_refused() -> None:
    metrics = Metrics()
    metrics.add_counter("qatysu_widgets_made_total", "Widgets made.")

    refused = "metric 'qatysu_widgets_made_total' is already declared"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        metrics.add_counter("qatysu_widgets_made_total", "Widgets made again.")


def test_a_counter_may_not_take_the_name_of_a_core_metric() -> None:
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics().add_counter("qatysu_http_requests_total", "A plugin's requests.")


def test_a_declared_gauge_is_exposed_and_holds_what_it_was_set_to() -> None:
    metrics = Metrics()
    declared = metrics.add_gauge("qatysu_widgets_in_stock", "Widgets in stock.")

    assert metrics.registry.get_sample_value("qatysu_widgets_in_stock") == 0.0
    declared.set(42)

    lines = metrics.exposition().decode().splitlines()
    assert "# TYPE qatysu_widgets_in_stock gauge" in lines
    assert "qatysu_widgets_in_stock 42.0" in lines


def test_a_gauge_needs_the_prefix_and_a_name_no_counter_took() -> None:
    metrics = Metrics()
    metrics.add_counter("qatysu_widgets_made_total", "Widgets made.")

    with pytest.raises(ValueError, match="every metric name starts with 'qatysu_'"):
        metrics.add_gauge("widgets_in_stock", "Widgets.")
    refused = "metric 'qatysu_widgets_made_total' is already declared"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        metrics.add_gauge("qatysu_widgets_made_total", "Widgets made, as a gauge.")


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    declared = first.add_counter("qatysu_widgets_made_total", "Widgets made.")
    second.add_counter("qatysu_widgets_made_total", "Widgets made.")

    declared.inc()

    assert first.registry.get_sample_value("qatysu_widgets_made_total") == 1.0
    assert second.registry.get_sample_value("qatysu_widgets_made_total") == 0.0


def test_an_observed_request_is_counted_and_timed_under_its_route() -> None:
    metrics = Metrics()

    metrics.observe_request("/things", "GET", 200, 0.003)
    metrics.observe_request("/things", "GET", 200, 0.2)
    metrics.observe_request("/things", "POST", 422, 0.001)

    sample = metrics.registry.get_sample_value
    assert (
        sample("qatysu_http_requests_total", {"route": "/things", "method": "GET", "status": "200"})
        == 2.0
    )
    assert (
        sample(
            "qatysu_http_requests_total", {"route": "/things", "method": "POST", "status": "422"}
        )
        == 1.0
    )
    get, post = {"route": "/things", "method": "GET"}, {"route": "/things", "method": "POST"}
    assert sample("qatysu_http_request_duration_seconds_count", get) == 2.0
    assert sample("qatysu_http_request_duration_seconds_count", post) == 1.0
    assert sample("qatysu_http_request_duration_seconds_bucket", {**get, "le": "0.005"}) == 1.0
    assert sample("qatysu_http_request_duration_seconds_bucket", {**post, "le": "0.005"}) == 1.0


def test_the_latency_histogram_has_a_bucket_at_the_configured_slo() -> None:
    metrics = Metrics(slo_seconds=0.3)
    metrics.observe_request("/things", "GET", 200, 0.29)

    sample = metrics.registry.get_sample_value
    get = {"route": "/things", "method": "GET"}
    assert sample("qatysu_http_request_duration_seconds_bucket", {**get, "le": "0.3"}) == 1.0
    assert sample("qatysu_http_request_duration_seconds_bucket", {**get, "le": "0.25"}) == 0.0


async def test_the_metrics_handler_answers_in_the_prometheus_text_format(
    aiohttp_client: Any,
) -> None:
    app = web.Application()
    app[observability_keys.METRICS] = Metrics()
    app.router.add_get("/metrics", metrics_handler)
    client = await aiohttp_client(app)

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "# TYPE qatysu_http_requests_total counter" in (await response.text()).splitlines()


class WidgetPlugin:
    """Declares a counter of its own when the app is built, and counts on its route."""

    @hookimpl
    def qatysu_add_routes(self, routes: RouteRegistry, app: web.Application) -> None:
        app[observability_keys.METRICS].add_counter("qatysu_widgets_made_total", "Widgets made.")


async def test_a_plugins_counter_is_on_the_apps_metrics_route_from_the_start(
    make_client: Any,
) -> None:
    client = await make_client(extra_plugins=(WidgetPlugin(),))

    text = await (await client.get("/metrics")).text()

    assert "qatysu_widgets_made_total 0.0" in text.splitlines()
    # The built-in petition channel declares its counter the same way, under the name the
    # dashboards and alerts in config/ use.
    assert "qatysu_petition_signatures_total 0.0" in text.splitlines()


# --- build info, readiness and the reasons for 503 ---------------------------------------------


def test_build_info_names_the_qatysu_python_and_aiohttp_versions() -> None:
    import platform
    from importlib.metadata import version

    import aiohttp

    labels = {
        "version": version("qatysu"),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
    }

    assert Metrics().registry.get_sample_value("qatysu_build_info", labels) == 1.0


def test_each_503_is_counted_under_its_reason_and_one_without_as_unspecified() -> None:
    metrics = Metrics()

    for reason in ("storage_failed", "storage_failed", "commit_failed", ""):
        metrics.count_unavailable(reason)

    sample = metrics.registry.get_sample_value
    assert sample("qatysu_http_unavailable_total", {"reason": "storage_failed"}) == 2.0
    assert sample("qatysu_http_unavailable_total", {"reason": "commit_failed"}) == 1.0
    assert sample("qatysu_http_unavailable_total", {"reason": "unspecified"}) == 1.0


class _Unreachable:
    """A connection that cannot be opened: the database is down."""

    async def __aenter__(self) -> Any:
        raise ConnectionRefusedError("database is down")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_read_the_database_cannot_answer_counts_a_storage_failed_503(
    make_client: Any,
) -> None:
    client = await make_client()
    client.app[storage_keys.DATABASE].read = _Unreachable  # type: ignore[method-assign]

    response = await client.get("/api/v1/petitions")

    sample = client.app[observability_keys.METRICS].registry.get_sample_value
    assert response.status == 503
    assert sample("qatysu_http_unavailable_total", {"reason": "storage_failed"}) == 1.0


async def _refused() -> None:
    raise ConnectionRefusedError("database is down")


async def test_readiness_sets_the_ready_gauge_from_its_verdict(make_client: Any) -> None:
    # Every probe asks the database afresh, so the second one sees it gone.
    client = await make_client(server={"readiness_cache_seconds": 0})
    sample = client.app[observability_keys.METRICS].registry.get_sample_value

    assert (await client.get("/readyz")).status == 200
    assert sample("qatysu_ready") == 1.0
    client.app[storage_keys.DATABASE].ping = _refused  # type: ignore[method-assign]
    assert (await client.get("/readyz")).status == 503
    assert sample("qatysu_ready") == 0.0
