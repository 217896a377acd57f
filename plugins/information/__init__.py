"""E-information: items agencies publish (searchable, in kk/ru/en), and citizens' requests for
access to information, answered by the agency within a statutory term of working days.

Registered like any third-party channel: a ``core.plugin_host.channels.Channel`` named ``plugin``.
"""

from __future__ import annotations

from core.sdk import Channel
from plugins.information.demo import seed_information
from plugins.information.handlers import routes
from plugins.information.settings import SECTION, InformationSettings
from plugins.information.state import STATE, InformationState
from plugins.information.tables import MIGRATIONS

plugin = Channel(
    SECTION,
    settings=InformationSettings,
    routes=routes,
    state=STATE,
    build=InformationState.build,
    migrations=MIGRATIONS,
    demo=seed_information,
)
