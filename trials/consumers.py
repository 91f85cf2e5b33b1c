"""``/ws/trials/``: the live /trials/ pages, as HTML fragments for htmx's ws extension.

Like ``/ws/alarms/`` (``workers.consumers``): each frame holds whole sections of the page
(``trials.views``) marked ``hx-swap-oob``, rendered from the database, so a reconnect just
starts with a full refresh. ``?trial=<id>`` follows one trial's page instead of the inbox.
Any ``trial_*`` event re-renders; bursts coalesce into one frame
(``ledger.consumers.LivePageConsumer``).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from ledger.consumers import CLOSE_BAD_REQUEST, CLOSE_UNKNOWN_NODE, LivePageConsumer
from ledger.frames import StreamEvent
from ledger.stream import in_database
from organization import roles
from trials.models import Trial
from trials.views import SECTION_TEMPLATES, detail_state_html, inbox_sections_html, may_decide

TRIAL_KIND_PREFIX = "trial_"


@in_database
def _may_decide(user: object) -> bool:
    return may_decide(user)


@in_database
def _trial_exists(trial_id: str) -> bool:
    return Trial.objects.filter(suggestion_id=trial_id).exists()


@in_database
def _render(trial_id: str | None, decide: bool) -> str:
    if trial_id is not None:
        return detail_state_html(trial_id, may_decide=decide)
    return inbox_sections_html(set(SECTION_TEMPLATES), may_decide=decide)


class TrialsConsumer(LivePageConsumer):
    """The inbox's sections, or with ``?trial=`` that trial's part of its page."""

    required_permission = roles.VIEW

    async def connect(self) -> None:
        if not await self.admit():
            return
        user = self.scope["user"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        trials = query.get("trial", [])
        if len(trials) > 1 or (trials and not trials[0]):
            await self.refuse(CLOSE_BAD_REQUEST)
            return
        self.trial_id = trials[0] if trials else None
        if self.trial_id is not None and not await _trial_exists(self.trial_id):
            await self.refuse(CLOSE_UNKNOWN_NODE)
            return
        self.decide = await _may_decide(user)
        await self.accept()
        await self.go_live()

    def wants(self, event: StreamEvent) -> bool:
        return event.kind.startswith(TRIAL_KIND_PREFIX)

    async def render(self) -> str:
        return await _render(self.trial_id, self.decide)
