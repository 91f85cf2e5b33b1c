"""Fixtures of the trials services' tests: an organization and suggestions to queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from organization.genome import (
    AddChild,
    LeafOperationSpec,
    ModelSpec,
    NodeLifecycleStatus,
    ViableNode,
    patch_to_json,
)
from organization.models import GenomeVersion
from organization.services import genome_bootstrap
from workers.domain.homeostat import GeneSuggestionDraft, SafetyLimits, SuggestionSource, TrialMode

ROOT = "root-codebase-system"


@pytest.fixture
def champion(db: None) -> GenomeVersion:
    version, _ = genome_bootstrap(template="single", actor="test")
    return version


def reviewer_patch(name: str = "review-probation-leaf", parent: str = ROOT) -> dict[str, Any]:
    leaf = ViableNode.leaf(name, LeafOperationSpec.reviewer(), id=name)
    leaf.status = NodeLifecycleStatus.PROBATION
    leaf.model = ModelSpec(provider="echo", model="local-echo")
    return patch_to_json(AddChild(parent_id=parent, child=leaf))


@pytest.fixture
def make_draft() -> Callable[..., GeneSuggestionDraft]:
    def make(
        *,
        name: str = "review-probation-leaf",
        mode: TrialMode = TrialMode.CANARY,
        share: int | None = 10_000,
        max_tasks: int | None = None,
        requires_approval: bool = False,
        **overrides: object,
    ) -> GeneSuggestionDraft:
        fields: dict[str, object] = {
            "suggested_by_node_id": ROOT,
            "target_node_id": ROOT,
            "source": SuggestionSource.SYSTEM3_STAR_AUDIT,
            "patch": reviewer_patch(name),
            "hypothesis": "a reviewer catches regressions",
            "evidence": ["failure_ratio=0.400, failed=2, traces=5"],
            "trial_mode": mode,
            "safety_limits": SafetyLimits(
                max_traffic_share_basis_points=share,
                max_tasks=max_tasks,
                requires_approval=requires_approval,
            ),
        }
        fields.update(overrides)
        return GeneSuggestionDraft(**fields)  # type: ignore[arg-type]

    return make
