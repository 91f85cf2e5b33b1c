"""``/directives/<id>/``: one directive, its task graph and one task in full, live.

The page renders completely on the server (it works without JavaScript: each task in the
graph and the list is a link to ``?task=<id>``). Its live part (the progress line, the graph,
the task list and the open task) is one template, ``workers/_directive_live.html``: the full
page includes it, ``/directives/<id>/live/`` answers it alone when htmx opens another task
in place, and ``/ws/directives/`` (``workers.directive_consumer``) pushes its sections again,
marked ``hx-swap-oob``, whenever a ledger event of the directive lands.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from organization import roles
from organization.access import page_needs
from workers.directive_selectors import DirectiveTasks, directive_tasks, task_in_full
from workers.models import Task
from workers.views.task_graph import task_graph

# The sections of the live part, in the order a frame carries them.
SECTION_TEMPLATES = (
    "workers/_directive_progress.html",
    "workers/_directive_graph.html",
    "workers/_task_detail.html",
    "workers/_directive_tasks.html",
)
MAX_TASK_ID_LENGTH = 64
# Past this many tasks the list leaves out the completed ones (and stops there): rendering
# thousands of rows on every live redraw would cost seconds, and the counts say the rest.
TASK_LIST_LIMIT = 250


def selected_task_id(value: str | None) -> str | None:
    """``?task=<id>``, leniently: anything too long to be an id is no choice."""
    value = (value or "").strip()
    return value if value and len(value) <= MAX_TASK_ID_LENGTH else None


def live_context(read: DirectiveTasks, task_id: str | None) -> dict[str, Any]:
    """What the live part shows: the graph, the list and the chosen task (when it is one of
    the directive's; otherwise the first one that failed, or else the first one: a page
    opened before the root mapped the directive shows its first task once there is one)."""
    if task_id not in read.by_id:
        failed = [task for task in read.tasks if task.status == Task.Status.FAILED]
        first = (failed or read.tasks)[:1]
        task_id = first[0].id if first else None
    directive_id = read.directive.id
    open_task = task_in_full(directive_id=directive_id, task_id=task_id) if task_id else None
    dependencies = (open_task.task.dependencies or []) if open_task else []
    listed = read.tasks
    if len(listed) > TASK_LIST_LIMIT:
        listed = [task for task in listed if task.status != Task.Status.COMPLETED]
        listed = listed[:TASK_LIST_LIMIT]
    return {
        "directive": read.directive,
        "read": read,
        "listed": listed,
        "unlisted": read.total - len(listed),
        "list_limit": TASK_LIST_LIMIT,
        "graph": task_graph(read.tasks, directive_id=directive_id, selected_task_id=task_id),
        "open_task": open_task,
        "open_dependencies": [read.by_id[d] for d in dependencies if d in read.by_id],
        "task_id": task_id,
        "statuses": Task.Status.choices,
    }


def directive_sections_html(directive_id: str, task_id: str | None) -> str | None:
    """Every live section as an out-of-band swap, for the websocket; None once the directive
    is gone."""
    read = directive_tasks(directive_id=directive_id)
    if read is None:
        return None
    context = {**live_context(read, task_id), "oob": True}
    return "".join(render_to_string(template, context) for template in SECTION_TEMPLATES)


def _missing(request: HttpRequest, directive_id: str) -> HttpResponse:
    return render(
        request, "workers/directive_missing.html", {"directive_id": directive_id}, status=404
    )


@require_GET
@page_needs(roles.VIEW)
def directive_page(request: HttpRequest, directive_id: str) -> HttpResponse:
    read = directive_tasks(directive_id=directive_id)
    if read is None:
        return _missing(request, directive_id)
    context = live_context(read, selected_task_id(request.GET.get("task")))
    return render(request, "workers/directive.html", context)


@require_GET
@page_needs(roles.VIEW)
def directive_live(request: HttpRequest, directive_id: str) -> HttpResponse:
    read = directive_tasks(directive_id=directive_id)
    if read is None:
        return _missing(request, directive_id)
    context = live_context(read, selected_task_id(request.GET.get("task")))
    return render(request, "workers/_directive_live.html", context)
