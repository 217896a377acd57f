"""Online petitions: filed, moderated, signed once per citizen, answered at a threshold.

Registered like any third-party channel: a ``core.plugin_host.channels.Channel`` named ``plugin``.
"""

from __future__ import annotations

from core.sdk import Channel
from plugins.petitions.demo import seed_petitions
from plugins.petitions.handlers import routes
from plugins.petitions.live import live_routes
from plugins.petitions.settings import SECTION, PetitionSettings
from plugins.petitions.state import STATE, PetitionState
from plugins.petitions.sweeper import expire_overdue
from plugins.petitions.tables import MIGRATIONS
from plugins.petitions.watchers import live_counts_ctx

plugin = Channel(
    SECTION,
    settings=PetitionSettings,
    routes=[*routes, *live_routes],
    state=STATE,
    build=PetitionState.build,
    migrations=MIGRATIONS,
    sweep=expire_overdue,
    demo=seed_petitions,
    contexts=(live_counts_ctx,),
)
