"""Ids and clocks fixed by the seed, patched into this process only (no production change).

* ``ledger.chain.new_id`` (the project's one source of ids: every re-export of it and every
  model default calls it) draws from a generator seeded by the run's key. Only the project's
  ids are patched, not ``uuid.uuid4`` itself: a library that draws a uuid once per process
  (channels_redis names its client on first use) would otherwise shift the whole stream, and
  the second run in a process would not repeat the first;
* ``django.utils.timezone.now`` (module attribute, and every model field whose default is it),
  the envelopes' RFC 3339 stamps (``workers.domain.messages.datetime``), the genome lineage's
  ``time.time()`` (``organization.services.time``) and the leaf's latency clock
  (``workers.services.leaf.time``) read one clock that moves a millisecond per reading, and by
  a task's simulated latency when the world provider runs it.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace
from typing import Any
from unittest import mock

EPOCH = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.micros = 0

    def tick(self) -> dt.datetime:
        self.micros += 1000
        return EPOCH + dt.timedelta(microseconds=self.micros)

    def now(self) -> dt.datetime:
        return self.tick()

    def unix(self) -> float:
        return self.tick().timestamp()

    def monotonic(self) -> float:
        return self.micros / 1e6

    def advance_ms(self, ms: int) -> None:
        self.micros += ms * 1000


class _Datetime(dt.datetime):
    """``datetime`` whose ``now`` reads the clock (only ``now`` is used where it is patched)."""

    clock: Clock

    @classmethod
    def now(cls, tz: Any = None) -> dt.datetime:  # type: ignore[override]
        moment = cls.clock.tick()
        return moment if tz is not None else moment.replace(tzinfo=None)


def _field_defaults(original: Any, replacement: Any) -> list[Any]:
    from django.apps import apps

    patched = []
    for model in apps.get_models():
        for model_field in model._meta.fields:
            if getattr(model_field, "default", None) is original:
                patched.append(model_field)
    for model_field in patched:
        model_field.default = replacement
        model_field.__dict__.pop("_get_default", None)  # a cached_property
    return patched


@contextmanager
def deterministic(key: str) -> Iterator[Clock]:
    import django.utils.timezone

    import ledger.chain
    import organization.services
    import workers.domain.messages
    import workers.services.leaf

    clock = Clock()
    ids = random.Random(key)

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=ids.getrandbits(128), version=4)

    def now() -> dt.datetime:
        return clock.now()

    stamped = type("_BenchDatetime", (_Datetime,), {"clock": clock})
    original_now = django.utils.timezone.now
    fields = _field_defaults(original_now, now)
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(ledger.chain, "uuid", SimpleNamespace(uuid4=uuid4)))
        stack.enter_context(mock.patch.object(django.utils.timezone, "now", now))
        stack.enter_context(mock.patch.object(workers.domain.messages, "datetime", stamped))
        stack.enter_context(
            mock.patch.object(organization.services, "time", SimpleNamespace(time=clock.unix))
        )
        stack.enter_context(
            mock.patch.object(
                workers.services.leaf, "time", SimpleNamespace(monotonic=clock.monotonic)
            )
        )
        try:
            yield clock
        finally:
            for model_field in fields:
                model_field.default = original_now
                model_field.__dict__.pop("_get_default", None)


__all__ = ["Clock", "deterministic", "time"]
