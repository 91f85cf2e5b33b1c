"""Celery tasks of the workers app."""

from __future__ import annotations

import hashlib

from celery import shared_task


@shared_task(name="vsm.diagnostics.digest")
def diagnostics_digest(payload: str) -> str:
    """Return the sha256 of ``payload``: a round trip that proves a worker is alive.

    Also what the embedded-broker soak test uses to show that no message is
    lost or corrupted on the way.
    """
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
