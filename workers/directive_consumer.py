"""``/ws/directives/?directive=<id>&task=<id>``: a directive's page, live, as HTML fragments
for htmx's ws extension.

Like ``/ws/alarms/`` (``workers.consumers``): each frame holds the live sections of the page
(``workers.views.directive_detail``: progress, graph, the open task, the task list) marked
``hx-swap-oob``, rendered from the database, so a reconnect simply starts with a full refresh.
It follows the ledger through the process's shared reader (``ledger.stream``) and wants the
events of its directive only: every change to a task (mapped, routed, held, a result, a
revision) and the directive settling is recorded with the directive's id. Bursts coalesce:
a frame holds everything that happened while the last one was rendered
(``ledger.consumers.LivePageConsumer``).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from ledger.consumers import CLOSE_BAD_REQUEST, CLOSE_UNKNOWN_NODE, LivePageConsumer
from ledger.frames import StreamEvent
from ledger.stream import in_database
from organization import roles
from workers.models import Directive
from workers.views.directive_detail import directive_sections_html, selected_task_id

# 4404 is "unknown node" on /ws/events/; here it says the directive is unknown.
CLOSE_UNKNOWN_DIRECTIVE = CLOSE_UNKNOWN_NODE


@in_database
def _directive_exists(directive_id: str) -> bool:
    return Directive.objects.filter(id=directive_id).exists()


@in_database
def _render(directive_id: str, task_id: str | None) -> str | None:
    return directive_sections_html(directive_id, task_id)


class DirectiveConsumer(LivePageConsumer):
    """Closes with 4404 once the directive is gone."""

    required_permission = roles.VIEW
    gone_close_code = CLOSE_UNKNOWN_DIRECTIVE

    async def connect(self) -> None:
        if not await self.admit():
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        directives, tasks = query.get("directive", []), query.get("task", [])
        if len(directives) != 1 or not directives[0] or len(tasks) > 1:
            await self.refuse(CLOSE_BAD_REQUEST)
            return
        self.directive_id = directives[0]
        self.task_id = selected_task_id(tasks[0] if tasks else None)
        if not await _directive_exists(self.directive_id):
            await self.refuse(CLOSE_UNKNOWN_DIRECTIVE)
            return
        await self.accept()
        await self.go_live()

    def wants(self, event: StreamEvent) -> bool:
        return bool(event.directive_id == self.directive_id)

    async def render(self) -> str | None:
        return await _render(self.directive_id, self.task_id)
