"""``/ws/alarms/``: the live /alarms/ page, as HTML fragments for htmx's ws extension.

Each frame holds whole sections of the page (``organization.views``) marked
``hx-swap-oob``, rendered from the database. Re-sending a section is harmless,
so a reconnect simply starts with a full refresh: nothing between the page load
and the connection can be missed.
"""

from __future__ import annotations

from ledger import kinds
from ledger.consumers import CLOSE_UNAUTHENTICATED, LedgerFollowingConsumer, in_database
from ledger.selectors import SUBTREE_SCAN_CHUNK, ledger_head_seq, subtree_events_after
from organization.views import SECTION_TEMPLATES, alarm_sections_html

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
def _head_seq() -> int:
    return ledger_head_seq()


@in_database
def _sections_changed_after(after_seq: int) -> tuple[set[str], int, bool]:
    events, scanned = subtree_events_after(
        node_id=None, after_seq=after_seq, limit=SUBTREE_SCAN_CHUNK
    )
    changed: set[str] = set()
    for event in events:
        changed |= SECTIONS_BY_KIND.get(event.kind, frozenset())
    return changed, scanned, len(events) >= SUBTREE_SCAN_CHUNK


@in_database
def _render(sections: set[str]) -> str:
    return alarm_sections_html(sections)


class AlarmsConsumer(LedgerFollowingConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        await self.accept()
        # Read the head before rendering: anything later is rendered again.
        head = await _head_seq()
        await self.send(text_data=await _render(set(ALL_SECTIONS)))
        await self.start_following(after_seq=head)

    async def ledger_advanced(self, after_seq: int) -> int:
        changed: set[str] = set()
        more = True
        while more:
            sections, after_seq, more = await _sections_changed_after(after_seq)
            changed |= sections
        if changed:
            await self.send(text_data=await _render(changed))
        return after_seq
