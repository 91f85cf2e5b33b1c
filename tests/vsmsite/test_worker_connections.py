"""A worker's database connections between tasks (vsmsite/celery.py's task signal hooks)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from unittest import mock

import pytest
from django.db import connection, connections

from vsmsite import celery as worker


@pytest.fixture
def health_checks() -> Iterator[mock.MagicMock]:
    """The default connection, kept across tasks and health-checked as on PostgreSQL; the
    mock counts its health checks."""
    connection.ensure_connection()
    with (
        mock.patch.object(connection, "close_at", None),
        mock.patch.object(connection, "health_check_enabled", True),
        mock.patch.object(connection, "is_usable", wraps=connection.is_usable) as is_usable,
    ):
        yield is_usable


def first_statement() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_finished_a_task_a_moment_ago_starts_the_next_unchecked(
    health_checks: mock.MagicMock,
) -> None:
    worker._task_finished()
    worker._task_starting()
    first_statement()

    assert health_checks.call_count == 0


@pytest.mark.django_db(transaction=True)
def test_a_connection_idle_for_longer_is_checked_before_the_next_task(
    health_checks: mock.MagicMock,
) -> None:
    worker._task_finished()
    worker._thread.task_finished_at -= worker.HEALTH_CHECK_AFTER_IDLE_SECONDS + 1
    worker._task_starting()
    first_statement()

    assert health_checks.call_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_failed_during_a_task_is_checked_and_closed_after_it(
    health_checks: mock.MagicMock,
) -> None:
    worker._task_starting()
    connection.errors_occurred = True  # what a lost connection leaves behind
    health_checks.return_value = False  # and it does not answer

    worker._task_finished()

    assert health_checks.call_count == 1
    assert connection.connection is None  # the next task connects afresh


def test_a_worker_keeps_sqlite_connections_between_tasks() -> None:
    config = connections.settings["default"]
    with mock.patch.dict(config, {"ENGINE": "django.db.backends.sqlite3", "CONN_MAX_AGE": 0}):
        worker._keep_sqlite_connections()
        assert config["CONN_MAX_AGE"] == worker.SQLITE_WORKER_CONN_MAX_AGE
    with mock.patch.dict(config, {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 0}):
        worker._keep_sqlite_connections()
        assert config["CONN_MAX_AGE"] == 0  # PostgreSQL's is DATABASE_CONN_MAX_AGE's


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_a_statement_run_often_is_prepared_on_the_server() -> None:
    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            return int(cursor.fetchone()[0])

    before = prepared()
    for _ in range(6):
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::int + 17 AS probe_of_prepared_statements", [1])
    assert prepared() > before


def test_a_started_worker_keeps_the_collector_off_what_it_loaded() -> None:
    gc.unfreeze()
    try:
        worker._spare_the_collector()
        assert gc.get_freeze_count() > 10_000  # Django, Celery and the apps, at the least
    finally:
        gc.unfreeze()
