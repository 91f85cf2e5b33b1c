"""A delivery that meets a database error is tried again later, not acknowledged as done."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError

from workers import tasks


class FlakyDatabase:
    """``envelope_deliver_onward`` failing with ``error`` the first ``failures`` times."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    def __call__(self, **kwargs: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "handled"


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
    ],
    ids=["operational", "interface"],
)
def test_a_database_error_is_retried_with_a_growing_delay(error: Exception) -> None:
    database = FlakyDatabase(error, failures=3)
    with (
        mock.patch.object(tasks, "envelope_deliver_onward", side_effect=database),
        mock.patch.object(tasks.deliver, "retry", wraps=tasks.deliver.retry) as retry,
    ):
        outcome = tasks.deliver.apply(args=["envelope-1", "controllers"])

    assert (outcome.state, outcome.result, database.calls) == ("SUCCESS", "handled", 4)
    delays = [call.kwargs["countdown"] for call in retry.call_args_list]
    # Jittered: each at most the doubled backoff (1, 2, 4 s), capped at 60 s.
    assert len(delays) == 3
    assert all(0 <= delay <= cap for delay, cap in zip(delays, [1, 2, 4], strict=True))


def test_the_retries_are_bounded_and_then_the_outbox_takes_over() -> None:
    database = FlakyDatabase(OperationalError("the database system is shutting down"), 10**6)
    with mock.patch.object(tasks, "envelope_deliver_onward", side_effect=database):
        outcome = tasks.deliver.apply(args=["envelope-1", "controllers"])

    assert outcome.state == "FAILURE"
    assert isinstance(outcome.result, OperationalError)
    assert database.calls == tasks.DATABASE_RETRIES + 1
    assert tasks.deliver.retry_backoff_max == 60


def test_any_other_error_is_not_retried() -> None:
    database = FlakyDatabase(ValueError("a bug"), failures=1)
    with mock.patch.object(tasks, "envelope_deliver_onward", side_effect=database):
        outcome = tasks.deliver.apply(args=["envelope-1", "controllers"])

    assert outcome.state == "FAILURE"
    assert database.calls == 1
