"""Typed settings: built-in defaults <- ``config/default.toml`` <- a TOML file (``--config``) <-
``QATYSU_*`` environment <- CLI flags.

Each layer overlays the one before it, table by table: a config file that changes one key keeps
every other key, a jurisdiction's register included. A table that carries
``__replace__ = true`` replaces the table beneath it whole instead (the marker itself is
dropped), e.g. ``[kazakhstan.agencies]`` with ``__replace__ = true`` for a register of one's own;
in the environment the same marker goes in the JSON,
``QATYSU_KAZAKHSTAN__AGENCIES='{"__replace__": true, ...}'`` (a whole core table may be given
as JSON under its own name).

Sections and keys are closed: an unknown key, or a value of the wrong type, stops the server at
start with a message that names the setting. Plugins own sections of their own, declared
through the ``qatysu_settings_section`` hook and validated the same way once the plugins are
loaded.

Environment names are ``QATYSU_<SECTION>__<KEY>`` (nested keys join with ``__``). Four short
forms exist for the settings everyone sets: ``QATYSU_JWT_SECRET``, ``QATYSU_IIN_HASH_SECRET``,
``QATYSU_DATABASE_URL`` and ``QATYSU_REDIS_URL``. A value that starts with ``[`` or ``{`` is read
as JSON.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

M = TypeVar("M", bound="BaseModel")

DEFAULT_CONFIG_FILE = Path("config/default.toml")
ENV_PREFIX = "QATYSU_"
# A key in a table that makes it replace the table beneath it instead of overlaying it.
REPLACE_MARKER = "__replace__"
MIN_SECRET_BYTES = 32
ENV_SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "QATYSU_JWT_SECRET": ("identity", "jwt_secret"),
    "QATYSU_IIN_HASH_SECRET": ("identity", "iin_hash_secret"),
    "QATYSU_DATABASE_URL": ("database", "url"),
    "QATYSU_REDIS_URL": ("redis", "url"),
}


class SettingsError(Exception):
    """A setting is unknown or invalid; the message names it."""


class Section(BaseModel):
    """A closed, immutable settings section."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=256)
    data_dir: Path = Path("var")
    demo: bool = False
    # Development mode: missing secrets come from a local file instead of stopping the server.
    dev: bool = False
    access_log: bool = True
    shutdown_timeout: float = Field(default=20.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    header_timeout: float = Field(default=10.0, gt=0)
    # A request's head and body must arrive within this of its first byte (slow bodies).
    request_timeout: float = Field(default=30.0, gt=0)
    # After body_grace seconds, a body must keep arriving at this many bytes a second (0: off).
    body_min_rate: float = Field(default=500.0, ge=0)
    body_grace: float = Field(default=5.0, ge=0)
    # Open connections one address may hold (0: no cap); trusted proxies are not capped.
    max_connections_per_address: int = Field(default=256, ge=0)
    keepalive_timeout: float = Field(default=15.0, gt=0)
    max_connections: int = Field(default=4096, ge=1)
    # Connections the kernel may hold for accept(); what waits beyond the SLO is better dropped.
    listen_backlog: int = Field(default=256, ge=1, le=65535)
    drain_grace: float = Field(default=0.0, ge=0)
    # /readyz asks the database and Redis at most once per this many seconds, however many ask.
    readiness_cache_seconds: float = Field(default=1.0, ge=0)
    trusted_proxies: tuple[str, ...] = ()
    # The one forwarding header the trusted proxies set; the other is never believed.
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    ipv6_client_prefix: int = Field(default=64, ge=1, le=128)
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Check every JSON answer against the model its route declares (tests run with it on).
    validate_responses: bool = False
    # Origins of the web front ends allowed to call the API from a browser (core/http/cors.py).
    cors_origins: tuple[
        Annotated[str, StringConstraints(pattern=r"^https?://[^/\s?#]+$")], ...
    ] = ()
    # gzip for JSON answers of at least this many bytes (core/http/compression.py).
    compression: bool = True
    compression_min_bytes: int = Field(default=1024, ge=1)

    @property
    def development_mode(self) -> bool:
        return self.dev or self.demo


class DatabaseSettings(Section):
    url: str = ""
    # None: migrate at start on the embedded SQLite default only; servers run `qatysu migrate`.
    migrate_on_start: bool | None = None
    pool_size: int = Field(default=8, ge=1)
    statement_timeout: float = Field(default=5.0, gt=0)
    # Seconds start-up (serve and migrate) waits for a database that does not answer yet.
    startup_wait: float = Field(default=10.0, ge=0)


class RedisSettings(Section):
    url: str | None = None
    key_prefix: str = "qatysu:"
    socket_timeout: float = Field(default=0.25, gt=0)


class TokenLifetimes(Section):
    """The longest a token of each role may live (``exp - iat``), in seconds, whoever signed it.

    An official's token opens privileged routes, so it lasts a working day at most; a citizen's
    may last a day. A single number in the settings sets every role at once.
    """

    citizen: float = Field(default=24 * 3600, gt=0, allow_inf_nan=False)
    agency: float = Field(default=8 * 3600, gt=0, allow_inf_nan=False)
    moderator: float = Field(default=8 * 3600, gt=0, allow_inf_nan=False)
    operator: float = Field(default=8 * 3600, gt=0, allow_inf_nan=False)


class IdentitySettings(Section):
    jwt_secret: str = ""
    jwt_public_key_file: Path | None = None
    algorithms: tuple[Literal["HS256", "RS256", "ES256"], ...] = ("HS256",)
    iin_hash_secret: str = ""
    leeway_seconds: float = Field(default=30.0, ge=0)
    # Identity-provider tokens (RS256, ES256) must carry these.
    issuer: str | None = None
    audience: str | None = None
    token_types: tuple[str, ...] = ("JWT", "at+jwt")
    # The token claim that names the citizen's region code (None: none is recorded). The region
    # is never derived from the IIN.
    region_claim: str | None = Field(default=None, min_length=1, max_length=64)
    max_token_lifetime_seconds: TokenLifetimes = TokenLifetimes()

    @field_validator("max_token_lifetime_seconds", mode="before")
    @classmethod
    def _one_lifetime_for_every_role(cls, value: Any) -> Any:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            return dict.fromkeys(TokenLifetimes.model_fields, value)
        return value

    @field_validator("jwt_secret", "iin_hash_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        # An HMAC key shorter than this can be searched offline together with the hashes.
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"a secret must be at least {MIN_SECRET_BYTES} bytes long")
        return value

    @model_validator(mode="after")
    def _provider_fully_configured(self) -> IdentitySettings:
        if any(algorithm != "HS256" for algorithm in self.algorithms):
            for name in ("jwt_public_key_file", "issuer", "audience"):
                if getattr(self, name) is None:
                    raise ValueError(f"identity.{name} must be set to accept RS256 or ES256 tokens")
        return self


class WriterSettings(Section):
    queue_size: int = Field(default=20_000, ge=1)
    max_batch: int = Field(default=512, ge=1)
    commit_timeout: float = Field(default=5.0, gt=0)


class CacheSettings(Section):
    ttl_seconds: float = Field(default=1.0, ge=0)
    max_entries: int = Field(default=10_000, ge=1)
    stale_while_revalidate: int = Field(default=5, ge=0)


class RateOverride(Section):
    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class AdmissionSettings(Section):
    enabled: bool = True
    initial_limit: int = Field(default=128, ge=1)
    min_limit: int = Field(default=32, ge=1)
    max_limit: int = Field(default=1024, ge=1)
    fixed_limit: int | None = Field(default=None, ge=1)
    queue_capacity: int = Field(default=512, ge=0)
    critical_reserve: float = Field(default=0.2, ge=0, lt=1)
    codel_target: float = Field(default=0.005, gt=0)
    codel_interval: float = Field(default=0.1, gt=0)
    default_deadline: float = Field(default=2.0, gt=0)
    ratelimit_enabled: bool = True
    ratelimit_fail_open: bool = True
    rate_overrides: dict[str, RateOverride] = Field(default_factory=dict)
    writer_pressure_high: float = Field(default=0.5, gt=0, le=1)
    edge_shedding: bool = True
    sojourn_target: float = Field(default=0.020, gt=0)
    fast_lane: bool = True
    brownout: float = Field(default=0.0, ge=0, le=0.98)
    # Requests one client may have in progress at once (0: no cap): per address (behind
    # trusted proxies, the forwarded one), and per verified token.
    max_inflight_per_address: int = Field(default=256, ge=0)
    max_inflight_per_citizen: int = Field(default=16, ge=0)
    # A new connection's first request that waited longer in the kernel is refused at the edge.
    # Not tighter: a CPU-capped process is throttled for most of each CFS period, the kernel
    # counts in jiffies (4 ms), and at 20 ms such waits alone refused requests at 1x load.
    kernel_age_target: float = Field(default=0.050, gt=0)
    kernel_age_critical: float = Field(default=0.100, gt=0)


class MetricsSettings(Section):
    slo_seconds: float = Field(default=0.25, gt=0)
    exposure: Literal["same_port", "separate_port", "bearer_token"] = "same_port"
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    bearer_token: str = ""

    @model_validator(mode="after")
    def _token_when_guarded(self) -> MetricsSettings:
        if self.exposure == "bearer_token" and len(self.bearer_token.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"metrics.bearer_token must be at least {MIN_SECRET_BYTES} bytes "
                "when metrics.exposure is bearer_token"
            )
        return self


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # json: one object per line, for a log shipper (core/host/logs.py).
    format: Literal["text", "json"] = "text"


class Names(Section):
    """A name in the three languages the server answers in (``core.wire.i18n.LANGUAGES``)."""

    kk: str = Field(min_length=1)
    ru: str = Field(min_length=1)
    en: str = Field(min_length=1)


class PluginsSettings(Section):
    disabled: tuple[str, ...] = ()
    enabled: tuple[str, ...] = ()


class Settings(Section):
    """Everything core reads, plus the raw sections that plugins own."""

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    identity: IdentitySettings = IdentitySettings()
    writer: WriterSettings = WriterSettings()
    cache: CacheSettings = CacheSettings()
    admission: AdmissionSettings = AdmissionSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    plugins: PluginsSettings = PluginsSettings()
    plugin_sections: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.server.data_dir / 'qatysu.db'}"


CORE_SECTIONS = frozenset(name for name in Settings.model_fields if name != "plugin_sections")


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build settings from every layer; raise SettingsError naming the first bad setting."""
    layered: dict[str, Any] = {}
    if DEFAULT_CONFIG_FILE.exists():
        _merge(layered, _read_toml(DEFAULT_CONFIG_FILE))
    if config_file is not None and config_file.resolve() != DEFAULT_CONFIG_FILE.resolve():
        _merge(layered, _read_toml(config_file))
    for layer in _from_environ(os.environ if environ is None else environ):
        _merge(layered, layer)
    for section, values in (overrides or {}).items():
        _merge(layered, {section: {k: v for k, v in values.items() if v is not None}})
    return build_settings(layered)


def build_settings(layered: Mapping[str, Any]) -> Settings:
    """Validate a nested mapping of sections into Settings."""
    core = {k: v for k, v in layered.items() if k in CORE_SECTIONS}
    plugin_sections = {k: v for k, v in layered.items() if k not in CORE_SECTIONS}
    for name, value in plugin_sections.items():
        if not isinstance(value, dict):
            raise SettingsError(f"setting [{name}] must be a table of keys, not {value!r}")
    try:
        return Settings(**core, plugin_sections=plugin_sections)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def validate_section(name: str, model: type[M], settings: Settings) -> M:
    """Validate a plugin's own section; the message names the setting that is wrong."""
    try:
        return model.model_validate(settings.plugin_sections.get(name, {}))
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc, prefix=name)) from None


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in ((prefix,) if prefix else ()) + error["loc"])
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{location}: {message}" if location else message)
    return "invalid settings: " + "; ".join(problems)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None


def _from_environ(environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """One layer per variable, merged in turn so that a table's replace marker reaches it."""
    layers: list[dict[str, Any]] = []
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        if name in ENV_SHORT_FORMS:
            path = ENV_SHORT_FORMS[name]
        elif "__" in name:
            path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        elif name[len(ENV_PREFIX) :].lower() in CORE_SECTIONS:
            # A whole core table as JSON, e.g. QATYSU_ADMISSION='{...}'.
            path = (name[len(ENV_PREFIX) :].lower(),)
        else:
            continue
        if any(not part for part in path):
            raise SettingsError(f"environment variable {name} does not name a setting")
        layers.append(_nest(path, _parse_env_value(name, raw)))
    return layers


def _parse_env_value(name: str, raw: str) -> Any:
    if raw.strip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"environment variable {name} is not valid JSON: {exc}") from None
    return raw


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    for part in reversed(path):
        value = {part: value}
    result: dict[str, Any] = value
    return result


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Overlay ``layer`` on ``into`` table by table; a table marked ``__replace__`` replaces."""
    for key, value in layer.items():
        if key == REPLACE_MARKER:
            continue
        if isinstance(value, Mapping):
            replace = value.get(REPLACE_MARKER, False)
            if not isinstance(replace, bool):
                raise SettingsError(f"{key}.{REPLACE_MARKER} must be true or false")
            if replace or not isinstance(into.get(key), dict):
                into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value
