"""The database at start-up: wait for it, then migrate it or say that its schema is behind."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.settings import Settings
from core.storage.database import Database, wait_until_reachable
from core.storage.migrations import MigrationSet, migrate, pending_migrations

log = logging.getLogger("qatysu")


async def open_database(settings: Settings, sets: Sequence[MigrationSet]) -> Database:
    """The configured database, once it answers (DatabaseUnreachable after
    ``database.startup_wait``), migrated where ``database.migrate_on_start`` says so.

    A schema left behind is served anyway, with one warning: readiness answers 503 naming
    ``qatysu migrate`` until someone runs it, and turns 200 without a restart once they have.
    """
    database = Database(
        settings.database_url,
        pool_size=settings.database.pool_size,
        statement_timeout=settings.database.statement_timeout,
    )
    try:
        await wait_until_reachable(database, wait=settings.database.startup_wait)
        migrate_now = settings.database.migrate_on_start
        if migrate_now is None:
            migrate_now = database.is_sqlite
        if migrate_now:
            for line in await migrate(database, sets):
                log.info("migrated %s", line)
        elif pending := await pending_migrations(database, sets):
            log.warning(
                "the database schema is behind the code (%d migrations pending): run "
                "`qatysu migrate`; /readyz answers 503 until then",
                len(pending),
            )
    except BaseException:
        await database.dispose()
        raise
    return database
