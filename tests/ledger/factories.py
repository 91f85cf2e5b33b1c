from __future__ import annotations

import uuid
from datetime import timedelta

import factory
from django.utils import timezone

from ledger.models import TaskTrace


class TaskTraceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskTrace

    id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    task_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    genome_id = "genome-1"
    assigned_node_id = "backend-coder"
    responsible_ancestor_ids = factory.LazyFunction(
        lambda: ["backend-system", "root-codebase-system"]
    )
    started_at = factory.Sequence(
        lambda n: timezone.now() - timedelta(hours=1) + timedelta(seconds=n)
    )
    outcome_score = 1.0
