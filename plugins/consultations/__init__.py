"""Public consultation on draft acts: numbered sections, threaded comments, one vote per
citizen, and the agency's report that answers the comments and closes the discussion.

Registered like any third-party channel: a ``core.plugin_host.channels.Channel`` named ``plugin``.
"""

from __future__ import annotations

from core.sdk import Channel
from plugins.consultations.demo import seed_consultation
from plugins.consultations.handlers import routes
from plugins.consultations.settings import SECTION, ConsultationSettings
from plugins.consultations.state import STATE, ConsultationState
from plugins.consultations.sweeper import record_closed
from plugins.consultations.tables import MIGRATIONS

plugin = Channel(
    SECTION,
    settings=ConsultationSettings,
    routes=routes,
    state=STATE,
    build=ConsultationState.build,
    migrations=MIGRATIONS,
    sweep=record_closed,
    demo=seed_consultation,
)
