"""The genome's version history with the trial behind each version (selectors, reads only).

A version is a trial's *candidate* when a trial names it as ``candidate_version`` (only
``trials.services.candidates`` makes candidates, in the transaction that queues the trial);
every other version was the champion once: the bootstrap, a patch applied, a rollback.

The trial behind a version:
- a candidate: the trial that tries it;
- a promotion: ``trial_promote`` applies the suggestion's patch to the champion as a new
  version and stores it as the trial's ``promoted_version`` (the candidate itself never
  becomes the champion);
- a rollback of a promotion: ``trial_rollback`` records ``genome_rolled_back`` with the trial's
  id on the event.

A page of history costs a bounded number of queries: the count, the page, its trials and
its rollback events (the genome column is never read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q

from ledger import kinds
from ledger.models import LedgerEvent
from organization.genome.patch_summary import patch_kind, patch_target
from organization.models import GenomeVersion
from trials.models import Trial

PER_PAGE = 25


@dataclass(frozen=True)
class TrialLink:
    trial_id: str
    role: str  # "candidate of", "promoted by", "rolled back by"
    state: str


@dataclass(frozen=True)
class VersionRow:
    version: GenomeVersion
    kind: str
    target: str
    is_candidate: bool
    trial: TrialLink | None

    @property
    def patch(self) -> Any:
        return self.version.patch


@dataclass(frozen=True)
class GenomeHistoryPage:
    rows: list[VersionRow]
    page: Page[GenomeVersion]
    include_candidates: bool


def genome_history_page(
    *, include_candidates: bool = False, page: int = 1, per_page: int = PER_PAGE
) -> GenomeHistoryPage:
    """One page of versions, newest first: the champion versions, or with
    ``include_candidates`` every version. An out-of-range page gives the last one."""
    versions = GenomeVersion.objects.defer("genome").order_by("-created_at", "-id")
    if not include_candidates:
        versions = versions.exclude(id__in=Trial.objects.values("candidate_version_id"))
    shown = Paginator(versions, per_page).get_page(page)
    listed = list(shown.object_list)
    links = genome_version_trials(version_ids=[version.id for version in listed])
    rows = [
        VersionRow(
            version=version,
            kind=patch_kind(version.patch),
            target=patch_target(version.patch),
            is_candidate=version.id in links and links[version.id].role == CANDIDATE_OF,
            trial=links.get(version.id),
        )
        for version in listed
    ]
    return GenomeHistoryPage(rows=rows, page=shown, include_candidates=include_candidates)


CANDIDATE_OF, PROMOTED_BY, ROLLED_BACK_BY = "candidate of", "promoted by", "rolled back by"


def genome_version_trials(*, version_ids: list[str]) -> dict[str, TrialLink]:
    """The trial behind each of these versions that has one (two or three queries)."""
    if not version_ids:
        return {}
    links: dict[str, TrialLink] = {}
    trials = Trial.objects.filter(
        Q(candidate_version_id__in=version_ids) | Q(promoted_version_id__in=version_ids)
    ).values_list("pk", "state", "candidate_version_id", "promoted_version_id")
    states = {}
    for trial_id, state, candidate_id, promoted_id in trials:
        states[trial_id] = state
        if candidate_id in version_ids:
            links[candidate_id] = TrialLink(trial_id, CANDIDATE_OF, state)
        if promoted_id in version_ids:
            links[promoted_id] = TrialLink(trial_id, PROMOTED_BY, state)
    rollbacks = LedgerEvent.objects.filter(
        kind=kinds.GENOME_ROLLED_BACK, genome_id__in=version_ids, trial_id__isnull=False
    ).values_list("genome_id", "trial_id")
    rolled = {version_id: trial_id for version_id, trial_id in rollbacks if version_id and trial_id}
    missing = set(rolled.values()) - set(states)
    if missing:
        states.update(Trial.objects.filter(pk__in=missing).values_list("pk", "state"))
    for version_id, trial_id in rolled.items():
        links.setdefault(version_id, TrialLink(trial_id, ROLLED_BACK_BY, states.get(trial_id, "")))
    return links
