"""``/genome/``: the genome's version history, and ``/genome/diff/``: any two versions compared,
node by node, drawn on the tree.

The history lists the champion versions (``?candidates=1`` adds the trials' candidates),
newest first: who, when, the patch (kind and target, the full JSON folded), the trial behind
it and the reason. The diff compares ``?from=<id>&to=<id>`` (either may be a unique prefix of
at least six characters); with only ``to`` it compares ``to`` with its parent, with only
``from`` the champion with ``from``, with neither the champion with its parent. The reads
are ``trials.genome_history`` and ``organization.genome_history``; these views parse the
request and render.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from organization import roles
from organization.access import page_needs
from organization.genome_history import (
    VersionDiff,
    genome_version_diff,
    genome_version_find,
    genome_version_recent,
)
from organization.models import GenomeVersion
from organization.query import query_page
from organization.selectors import champion_version
from trials.genome_history import genome_history_page, genome_version_trials
from vsmsite.dashboard.genome_drawing import diff_drawing

MAX_PAGE = 100_000


@require_GET
@page_needs(roles.VIEW)
def history(request: HttpRequest) -> HttpResponse:
    include_candidates = request.GET.get("candidates") in ("1", "on", "true")
    shown = genome_history_page(
        include_candidates=include_candidates,
        page=query_page(request.GET, below=MAX_PAGE),
    )
    champion = champion_version()
    return render(
        request,
        "dashboard/genome.html",
        {
            "history": shown,
            "rows": [(row, _pretty(row.patch)) for row in shown.rows],
            "champion_id": champion.id if champion is not None else None,
            "candidates_query": "&candidates=1" if include_candidates else "",
        },
    )


def _pretty(patch: object) -> str:
    return "" if patch is None else json.dumps(patch, indent=2, sort_keys=True, ensure_ascii=False)


@require_GET
@page_needs(roles.VIEW)
def diff(request: HttpRequest) -> HttpResponse:
    from_text = request.GET.get("from", "").strip()
    to_text = request.GET.get("to", "").strip()
    context: dict[str, object] = {
        "from_text": from_text,
        "to_text": to_text,
        "recent": genome_version_recent(),
    }
    newer: GenomeVersion | None
    if to_text:
        newer = genome_version_find(version_id=to_text)
        if newer is None:
            return _missing(request, context, to_text)
    else:
        newer = champion_version()
    older: GenomeVersion | None = None
    if from_text:
        older = genome_version_find(version_id=from_text)
        if older is None:
            return _missing(request, context, from_text)
    elif newer is not None and newer.parent_id is not None:
        older = genome_version_find(version_id=newer.parent_id)
    if newer is None or older is None:
        # Nothing to compare yet: no organization, or the first version (it has no parent).
        context.update(
            {"newer": newer, "from_text": from_text, "to_text": newer.id if newer else ""}
        )
        return render(request, "dashboard/genome_diff.html", context)
    compared = genome_version_diff(older=older, newer=newer)
    context.update(_diff_context(compared))
    context.update({"from_text": older.id, "to_text": newer.id})
    return render(request, "dashboard/genome_diff.html", context)


def _missing(request: HttpRequest, context: dict[str, object], version_id: str) -> HttpResponse:
    context["missing_id"] = version_id
    return render(request, "dashboard/genome_missing.html", context, status=404)


def _diff_context(compared: VersionDiff) -> dict[str, object]:
    diff = compared.diff
    anchors = {ref.node_id: f"added-{i}" for i, ref in enumerate(diff.added)}
    anchors.update({ref.node_id: f"removed-{i}" for i, ref in enumerate(diff.removed)})
    anchors.update({change.node_id: f"changed-{i}" for i, change in enumerate(diff.changed)})
    label = (
        f"The tree of version {compared.newer.id[:8]} with the differences from version "
        f"{compared.older.id[:8]} marked"
    )
    trials = genome_version_trials(version_ids=[compared.older.id, compared.newer.id])
    return {
        "compared": compared,
        "diff": diff,
        "same": compared.older.id == compared.newer.id,
        "drawing": diff_drawing(compared.tree, anchors, label=label),
        "anchored_added": [(anchors[r.node_id], r) for r in diff.added],
        "anchored_removed": [(anchors[r.node_id], r) for r in diff.removed],
        "anchored_changed": [(anchors[c.node_id], c) for c in diff.changed],
        "older_trial": trials.get(compared.older.id),
        "newer_trial": trials.get(compared.newer.id),
    }
