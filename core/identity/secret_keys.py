"""The server's two secrets: the HS256 token key and the key of the IIN hash.

Both are explicit. Outside development mode (``--dev``, or ``--demo``) a missing secret stops
the server at start with a message that names it: a silent fallback would keep the IIN key next
to the hashes it protects, give each replica its own key (so a citizen could sign once per
replica), and mint a new key whenever the volume is lost.

In development mode a missing secret comes from ``dev-secrets.json`` under the data directory.
That file is created atomically with mode 0600, and refused when anyone but its owner can read it.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import orjson

from core.settings import Settings, SettingsError

log = logging.getLogger("qatysu")

DEV_SECRETS_FILE = "dev-secrets.json"
# Files whose use this process has already announced: one warning per start, not one per use.
_announced: set[Path] = set()
# Where each secret is set, for messages that tell the operator exactly what is missing.
SECRET_NAMES = {
    "jwt_secret": "identity.jwt_secret (QATYSU_JWT_SECRET)",
    "iin_hash_secret": "identity.iin_hash_secret (QATYSU_IIN_HASH_SECRET)",
}


@dataclass(frozen=True, slots=True)
class ServerSecrets:
    jwt_secret: bytes
    iin_hash_secret: bytes
    # True when the token key is the operator's own, not a development one.
    jwt_configured: bool


def resolve_secrets(settings: Settings) -> ServerSecrets:
    """The configured secrets; in development mode, development ones stand in for missing ones."""
    identity = settings.identity
    configured = {"jwt_secret": identity.jwt_secret, "iin_hash_secret": identity.iin_hash_secret}
    missing = [name for name, value in configured.items() if not value]
    values = dict(configured)
    if missing:
        if not settings.server.development_mode:
            named = " and ".join(SECRET_NAMES[name] for name in missing)
            raise SettingsError(
                f"{named} must be set: the server refuses to start without its secrets "
                "(at least 32 bytes each); for a local trial run, add --dev "
                "(serve also takes --demo)"
            )
        stored = development_secrets(Path(settings.server.data_dir))
        for name in missing:
            values[name] = stored[name]
    return ServerSecrets(
        jwt_secret=values["jwt_secret"].encode(),
        iin_hash_secret=values["iin_hash_secret"].encode(),
        jwt_configured=bool(identity.jwt_secret),
    )


def development_secrets(data_dir: Path) -> dict[str, str]:
    """The development secrets under ``data_dir``, created on first use."""
    path = data_dir / DEV_SECRETS_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_atomically(path)
    return _read_private(path)


def _create_atomically(path: Path) -> None:
    created = orjson.dumps(
        {"jwt_secret": secrets.token_urlsafe(32), "iin_hash_secret": secrets.token_urlsafe(32)}
    )
    # Written whole to a private temporary file, then linked into place: a reader never sees a
    # partial file, and of two processes starting at once the first link wins for both.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(created)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        log.warning("development mode: created development secrets in %s", path)
    finally:
        temporary.unlink(missing_ok=True)


def _read_private(path: Path) -> dict[str, str]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SettingsError(
            f"{path} is readable by others (mode {mode:04o}): refusing to use its secrets; "
            f"run `chmod 600 {path}` or delete it"
        )
    try:
        stored = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise SettingsError(f"{path} is not valid JSON; delete it to create new ones") from None
    if not isinstance(stored, dict) or not all(
        isinstance(stored.get(name), str) and stored[name] for name in SECRET_NAMES
    ):
        raise SettingsError(f"{path} lacks a secret; delete it to create new ones")
    if path not in _announced:
        _announced.add(path)
        log.warning("development mode: using the development secrets in %s", path)
    return {name: stored[name] for name in SECRET_NAMES}
