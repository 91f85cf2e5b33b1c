"""Reads behind the genome history pages: finding a version, and two versions' diff.

Selectors (reads only). The listing itself, which names the trial behind each version,
lives in ``trials.genome_history`` (the trials app knows trials; this app does not).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from organization.genome import OrganizationalGenome
from organization.genome.diff import DiffTreeNode, GenomeDiff, diff_tree, genome_diff
from organization.models import GenomeVersion
from organization.selectors import VersionNotFound, genome_version

# A prefix this long of a version id (the history shows eight characters) names a version
# when exactly one id starts with it.
ID_PREFIX_MIN = 6


def genome_version_find(*, version_id: str) -> GenomeVersion | None:
    """The version with this id, or the only one whose id starts with it (at least
    ``ID_PREFIX_MIN`` characters), or None. The genome column is not read."""
    versions = GenomeVersion.objects.defer("genome")
    found = versions.filter(id=version_id).first()
    if found is not None or len(version_id) < ID_PREFIX_MIN:
        return found
    matches = list(versions.filter(id__startswith=version_id).order_by("id")[:2])
    return matches[0] if len(matches) == 1 else None


def genome_version_recent(*, limit: int = 50) -> list[GenomeVersion]:
    """The newest versions (without their genomes): the diff form's suggestions."""
    return list(GenomeVersion.objects.defer("genome").order_by("-created_at", "-id")[:limit])


@dataclass(frozen=True)
class VersionDiff:
    older: GenomeVersion
    newer: GenomeVersion
    diff: GenomeDiff
    tree: list[DiffTreeNode]  # the newer tree with the removed nodes put back, to draw
    node_total: int  # nodes in the overlaid tree before any were left out of the picture


# Versions are immutable, so a diff never goes stale either: each process keeps the last
# few it computed. Comparing two 10,000-node genomes (50,000 channels) costs about 80 ms of
# Python; an operator paging through one diff's picture and lists pays it once.
DIFF_CACHE_SIZE = 8
_diff_cache: OrderedDict[tuple[str, str], tuple[GenomeDiff, list[DiffTreeNode], int]] = (
    OrderedDict()
)
_diff_cache_lock = threading.Lock()


def genome_version_diff(*, older: GenomeVersion, newer: GenomeVersion) -> VersionDiff:
    """What ``newer`` changes against ``older`` (any two versions, either order), node by node,
    with the overlaid tree. The genomes come from the version cache. Raises VersionNotFound."""
    key = (older.id, newer.id)
    with _diff_cache_lock:
        known = _diff_cache.get(key)
        if known is not None:
            _diff_cache.move_to_end(key)
    if known is None:
        before = genome_version(version_id=older.id)
        after = genome_version(version_id=newer.id)
        diff = genome_diff(before, after)
        known = (diff, diff_tree(before, after, diff), _union_size(before, after))
        with _diff_cache_lock:
            _diff_cache[key] = known
            while len(_diff_cache) > DIFF_CACHE_SIZE:
                _diff_cache.popitem(last=False)
    diff, tree, node_total = known
    return VersionDiff(older=older, newer=newer, diff=diff, tree=tree, node_total=node_total)


def genome_version_diffs_forget() -> None:
    """Empty this process's diff cache (benches measuring a fresh process)."""
    with _diff_cache_lock:
        _diff_cache.clear()


def _union_size(before: OrganizationalGenome, after: OrganizationalGenome) -> int:
    return len(after.nodes) + sum(1 for node_id in before.nodes if node_id not in after.nodes)


__all__ = [
    "VersionDiff",
    "VersionNotFound",
    "genome_version_diff",
    "genome_version_diffs_forget",
    "genome_version_find",
    "genome_version_recent",
]
