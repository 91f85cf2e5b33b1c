"""``/ws/alarms/``: the live /alarms/ page, as HTML fragments for htmx's ws extension.

Each frame holds whole sections of the page (``workers.views.alarms``) marked
``hx-swap-oob``, rendered from the database. Re-sending a section is harmless,
so a reconnect simply starts with a full refresh: nothing between the page load
and the connection can be missed. The consumer follows the ledger through the
process's shared reader (``ledger.stream``), wanting only the kinds that change
a section; ``ledger.consumers.LivePageConsumer`` renders the frames.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.http import QueryDict

from ledger import kinds
from ledger.consumers import LivePageConsumer
from ledger.frames import StreamEvent
from ledger.stream import in_database
from organization import roles
from workers.views.alarms import SECTION_TEMPLATES, Listing, alarm_sections_html, may_raise_signal

# Which sections an event changes.
SECTIONS_BY_KIND: dict[str, frozenset[str]] = {
    kinds.ALGEDONIC_SIGNAL_RAISED: frozenset({"signals"}),
    kinds.ALGEDONIC_SUBTREE_PAUSED: frozenset({"pauses", "nodes"}),
    kinds.ALGEDONIC_SUBTREE_RESUMED: frozenset({"pauses", "nodes"}),
    kinds.GENOME_BOOTSTRAPPED: frozenset({"nodes"}),
    kinds.GENOME_PATCH_APPLIED: frozenset({"pauses", "nodes"}),
}
ALL_SECTIONS = frozenset(SECTION_TEMPLATES)


@in_database
def _may_raise_signal(user: object) -> bool:
    return may_raise_signal(user)


@in_database
def _render(sections: set[str], listing: Listing, raise_signal: bool) -> str:
    return alarm_sections_html(sections, listing, may_raise_signal=raise_signal)


class AlarmsConsumer(LivePageConsumer):
    """The first frame holds every section; later ones, those the events since changed."""

    required_permission = roles.VIEW

    async def connect(self) -> None:
        if not await self.admit():
            return
        # The page's own ?page=&q=, so that live sections show the rows the visitor looks at.
        query = self.scope.get("query_string", b"").decode("latin-1")
        self.listing = Listing.of(QueryDict(query))
        # The Pause and Resume buttons are for those who may raise signals (a POST checks again).
        self.raise_signal = await _may_raise_signal(self.scope["user"])
        await self.accept()
        self._changed: set[str] = set(ALL_SECTIONS)
        await self.go_live()

    def wants(self, event: StreamEvent) -> bool:
        return event.kind in SECTIONS_BY_KIND

    async def deliver(self, events: Sequence[StreamEvent]) -> None:
        for event in events:
            self._changed |= SECTIONS_BY_KIND[event.kind]
        self.changed()

    async def render(self) -> str:
        # Bursts coalesce: everything changed since the last render goes in one frame.
        sections, self._changed = self._changed, set()
        return await _render(sections, self.listing, self.raise_signal)
