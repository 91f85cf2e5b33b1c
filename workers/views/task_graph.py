"""A directive's task graph as an SVG picture: pixel geometry around the igraph layout.

The layout (which column and row each task goes in, and where long edges bend) is
``workers.task_graph_layout``'s; this module scales it to pixels, names each task's links
(its page with the task open, and the htmx fragment) and writes the markup: one box per task
coloured by status (and saying it in words), one arrow per dependency, every id, title and URL
escaped. Written with f-strings rather than a template for the reason the champion tree is
(``vsmsite.dashboard.drawing``): the template language costs about a millisecond a node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from workers.models import Task
from workers.task_graph_layout import LayeredGraph, Point, layered_dag_cached

COLUMN_WIDTH = 250
ROW_HEIGHT = 52
BOX_WIDTH = 200
BOX_HEIGHT = 40
MARGIN = 12
LABEL_CHARACTERS = 28
NODE_CHARACTERS = 30
# Past this many tasks the graph is not drawn (the page lists the tasks instead): a picture
# thousands of pixels high helps nobody, and its layout alone would take most of the
# page's time.
GRAPH_TASK_LIMIT = 250
# A box has room for a word or two; the tooltip and the task list say the whole label.
SHORT_STATUS: dict[str, str] = {
    Task.Status.BLOCKED_PAUSED.value: "held: paused",
    Task.Status.DEFERRED_BUDGET.value: "held: budget",
}


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _short(text: str, characters: int) -> str:
    return text if len(text) <= characters else text[: characters - 1] + "…"


@dataclass(frozen=True)
class TaskGraph:
    """What the template shows: the picture, or why there is none."""

    svg: SafeString | None
    task_count: int
    limit: int

    @property
    def too_big(self) -> bool:
        return self.task_count > self.limit


def task_graph(
    tasks: Sequence[Task], *, directive_id: str, selected_task_id: str | None
) -> TaskGraph:
    """The graph of ``tasks`` (summaries suffice), ``selected_task_id`` marked as open."""
    if not tasks or len(tasks) > GRAPH_TASK_LIMIT:
        return TaskGraph(svg=None, task_count=len(tasks), limit=GRAPH_TASK_LIMIT)
    ids = tuple(task.id for task in tasks)
    shape = tuple((task.id, tuple(str(d) for d in task.dependencies or ())) for task in tasks)
    layout = layered_dag_cached(ids, shape)
    page = reverse("workers:directive", args=[directive_id])
    fragment = reverse("workers:directive-live", args=[directive_id])
    return TaskGraph(
        svg=_svg(layout, tasks, page=page, fragment=fragment, selected=selected_task_id),
        task_count=len(tasks),
        limit=GRAPH_TASK_LIMIT,
    )


def _x(column: int) -> float:
    return MARGIN + column * COLUMN_WIDTH


def _y(row: float) -> float:
    return MARGIN + BOX_HEIGHT / 2 + row * ROW_HEIGHT


def _edge_path(start: Point, waypoints: Sequence[Point], end: Point) -> str:
    """From the right side of ``start``'s box, through each waypoint's column, to the left side
    of ``end``'s: curves between columns, straight runs across them."""
    points = [(_x(start.column) + BOX_WIDTH, _y(start.row))]
    for waypoint in waypoints:
        points += [(_x(waypoint.column), _y(waypoint.row))]
        points += [(_x(waypoint.column) + BOX_WIDTH, _y(waypoint.row))]
    # Stop short of the box: the arrowhead ends at its edge.
    points.append((_x(end.column) - 4, _y(end.row)))
    x, y = points[0]
    parts = [f"M{_number(x)},{_number(y)}"]
    for index, (next_x, next_y) in enumerate(points[1:]):
        if index % 2 == 0:  # to the next column: a curve
            middle = (x + next_x) / 2
            parts.append(
                f"C{_number(middle)},{_number(y)} {_number(middle)},{_number(next_y)} "
                f"{_number(next_x)},{_number(next_y)}"
            )
        else:  # across a column a long edge passes through
            parts.append(f"L{_number(next_x)},{_number(next_y)}")
        x, y = next_x, next_y
    return " ".join(parts)


def describe(task: Task, titles: dict[str, str]) -> str:
    """What a screen reader (and the tooltip) says about a task in the graph."""
    parts = [task.title, task.get_status_display()]
    node = task.executed_by or task.assigned_node_id
    if node:
        parts.append(f"{'executed by' if task.executed_by else 'assigned to'} {node}")
    dependencies = [titles[d] for d in task.dependencies or () if d in titles]
    if dependencies:
        parts.append("after " + "; ".join(dependencies))
    return ", ".join(parts)


def _node_markup(
    task: Task, place: Point, *, titles: dict[str, str], page: str, fragment: str, selected: bool
) -> str:
    x, y = _x(place.column), _y(place.row)
    query = f"?task={quote(task.id, safe='')}"
    href, get = escape(page + query), escape(fragment + query)
    description = escape(describe(task, titles))
    node = task.executed_by or task.assigned_node_id
    status = SHORT_STATUS.get(task.status, task.status)
    subtitle = f"{status} · {node}" if node else status
    classes = f"task-node status-{escape(task.status)}{' selected' if selected else ''}"
    current = ' aria-current="true"' if selected else ""
    return (
        f'<g class="{classes}" data-task-id="{escape(task.id)}" '
        f'data-status="{escape(task.status)}" data-node="{escape(node)}">'
        f'<a href="{href}#task-detail" hx-get="{get}" hx-target="#directive-live" '
        f'hx-swap="outerHTML" hx-push-url="{href}" aria-label="{description}"{current}>'
        f"<title>{description}</title>"
        f'<rect class="shape" x="{_number(x)}" y="{_number(y - BOX_HEIGHT / 2)}" '
        f'width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="5"/>'
        f'<rect class="band" x="{_number(x)}" y="{_number(y - BOX_HEIGHT / 2)}" '
        f'width="6" height="{BOX_HEIGHT}" rx="2"/>'
        f'<text class="label" x="{_number(x + 12)}" y="{_number(y - 6)}">'
        f"{escape(_short(task.title, LABEL_CHARACTERS))}</text>"
        f'<text class="sub" x="{_number(x + 12)}" y="{_number(y + 12)}">'
        f"{escape(_short(subtitle, NODE_CHARACTERS))}</text>"
        "</a></g>"
    )


def _svg(
    layout: LayeredGraph, tasks: Sequence[Task], *, page: str, fragment: str, selected: str | None
) -> SafeString:
    by_id = {task.id: task for task in tasks}
    titles = {task.id: task.title for task in tasks}
    edges = []
    for (start, end), waypoints in layout.edges.items():
        path = _edge_path(layout.places[start], waypoints, layout.places[end])
        edges.append(_edge_markup(path, start, end, by_id[start].status))
    for start, end in layout.cyclic:
        path = _edge_path(layout.places[start], [], layout.places[end])
        edges.append(_edge_markup(path, start, end, by_id[start].status, extra=" cyclic"))
    nodes = [
        _node_markup(
            task,
            layout.places[task.id],
            titles=titles,
            page=page,
            fragment=fragment,
            selected=task.id == selected,
        )
        for task in tasks
    ]
    width = int(2 * MARGIN + (layout.columns - 1) * COLUMN_WIDTH + BOX_WIDTH)
    height = int(2 * MARGIN + BOX_HEIGHT + (layout.rows - 1) * ROW_HEIGHT)
    # Safe: built from escaped values and numbers only.
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="task-graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="group" '
        f'aria-label="The task graph: {len(tasks)} task{"s" if len(tasks) != 1 else ""}, '
        'each after the tasks it depends on">'
        '<defs><marker id="dag-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
        f'<g class="edges" aria-hidden="true">{"".join(edges)}</g>' + "".join(nodes) + "</svg>"
    )


def _edge_markup(path: str, start: str, end: str, status: str, *, extra: str = "") -> str:
    return (
        f'<path class="edge from-{escape(status)}{extra}" d="{path}" '
        f'data-from="{escape(start)}" data-to="{escape(end)}" marker-end="url(#dag-arrow)"/>'
    )
