"""Shared fixtures and hooks for the whole suite."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from django.db import connection
from pytest_django.plugin import blocking_manager_key

from ledger.immutability import drop_guard, install_guard

_guard_lifted = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _ledger_guard_lifted_for_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let Django empty the database after a transactional test.

    Transactional tests end with a flush (TRUNCATE on PostgreSQL, DELETE on
    SQLite), which the append-only triggers rightly refuse. This fixture
    depends on pytest-django's database helper, so its teardown runs before
    the flush: it lifts the guard, and ``pytest_runtest_teardown`` below puts
    it back once the flush is done. The schema the tests see is otherwise
    exactly what the migrations install.
    """
    if "transactional_db" not in request.fixturenames and not _marked_transactional(request):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    drop_guard(connection)
    request.node.stash[_guard_lifted] = True


def _marked_transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return False
    return bool(marker.kwargs.get("transaction", False) or (marker.args and marker.args[0]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    result = yield
    # After the last test the test database is already gone: nothing to guard.
    if item.stash.get(_guard_lifted, False) and nextitem is not None:
        with item.config.stash[blocking_manager_key].unblock():
            install_guard(connection)
    return result


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Give each test a channel layer of its own.

    Tests run their websockets on event loops of their own; channels_redis keeps per-layer
    asyncio locks that belong to the loop that made them, so a layer carried over from an
    earlier test's loop fails with "bound to a different event loop". daphne runs one loop
    per process, so production never meets this.
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield


@pytest.fixture(autouse=True)
def _live_trials_forgotten() -> Iterator[None]:
    """Each test starts without the process's short-lived list of live trials (a test's rows
    are gone when it ends; the next test must not trust a list read during the last)."""
    from organization.selectors import live_trials_forget

    live_trials_forget()
    yield


def pytest_configure(config: pytest.Config) -> None:
    """Hash the tests' passwords cheaply: PBKDF2's million rounds cost a third of a second per
    user created or logged in, which the suite would pay hundreds of times. Production hashers
    stay in the list, so any stored hash still verifies."""
    from django.conf import settings

    _hypothesis_profile_chosen(config)

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    _static_files_listed_once()
    _post_migrate_replayed_after_flush()


# Property tests draw a quarter of Hypothesis's default hundred examples in the fast run, where
# they would otherwise cost a sixth of its time; the whole suite draws them all.
FAST_EXAMPLES = 25


def _hypothesis_profile_chosen(config: pytest.Config) -> None:
    """Load the "fast" profile when the run leaves the slow tests out (``-m "not slow"``).

    Run at configure time, before any test module is imported, so that module-level
    ``settings(...)`` objects inherit it too. ``--hypothesis-profile=default`` keeps the full
    count in a fast run (Hypothesis's plugin loads a profile named on the command line).
    """
    from hypothesis import settings as hypothesis_settings

    hypothesis_settings.register_profile("fast", max_examples=FAST_EXAMPLES)
    if config.getoption("hypothesis_profile", None):
        return
    if re.search(r"\bnot\s+slow\b", config.getoption("markexpr", "") or ""):
        hypothesis_settings.load_profile("fast")


# The settings (with every WHITENOISE_ one) that decide which files WhiteNoise serves and how.
_STATIC_SETTINGS = (
    "DEBUG",
    "FORCE_SCRIPT_NAME",
    "INSTALLED_APPS",
    "STATIC_URL",
    "STATICFILES_DIRS",
    "STATICFILES_FINDERS",
)


def _static_files_listed_once() -> None:
    """List the static files for WhiteNoise once per run, not once per test client.

    Django's test ``Client`` builds the middleware chain anew for each client, and WhiteNoise's
    middleware then walks every finder and stats each of its 224 files: 38 ms a client on a
    busy machine, which the fast suite paid some 680 times (a fifth of its time). A served process
    builds its middleware once. The files do not change during a run, so the first listing
    under the same settings is handed to every later middleware: the same entries, the same
    headers, as if it had made them itself.
    """
    from django.conf import settings
    from whitenoise.middleware import WhiteNoiseMiddleware

    listings: dict[str, dict[str, Any]] = {}
    list_from_finders = WhiteNoiseMiddleware.add_files_from_finders

    def add_files_from_finders(self: WhiteNoiseMiddleware) -> None:
        key = repr(
            [
                (name, getattr(settings, name))
                for name in sorted(dir(settings))
                if name in _STATIC_SETTINGS or name.startswith("WHITENOISE_")
            ]
        )
        if key not in listings:
            before = dict(self.files)
            list_from_finders(self)
            listings[key] = {
                url: entry for url, entry in self.files.items() if before.get(url) is not entry
            }
        self.files.update(listings[key])

    WhiteNoiseMiddleware.add_files_from_finders = add_files_from_finders


def _post_migrate_replayed_after_flush() -> None:
    """After a transactional test's flush, put back what post_migrate made instead of sending it.

    A flush empties every table, and Django then sends post_migrate so that the content types,
    the permissions and the role groups (vsmsite/apps.py) exist again: some fifty queries after
    each transactional test. Those handlers make the same rows every time, so the rows the first
    flush's handlers made (every table is empty just before them) are kept and inserted again
    after each later flush, with the same primary keys. ``migrate`` still sends the signal.
    """
    from django.apps import apps
    from django.core.management.commands import flush
    from django.db import transaction

    made: dict[str, list[tuple[Any, list[dict[str, Any]]]]] = {}
    send = flush.emit_post_migrate_signal  # type: ignore[attr-defined]

    def rows_of_every_model(db: str) -> list[tuple[Any, list[dict[str, Any]]]]:
        models = [
            model
            for model in apps.get_models(include_auto_created=True)
            if model._meta.managed and not model._meta.proxy
        ]
        rows = [(model, list(model._base_manager.using(db).values())) for model in models]
        return [(model, values) for model, values in rows if values]

    def emit_post_migrate_signal(verbosity: int, interactive: bool, db: str, **kwargs: Any) -> None:
        from django.contrib.contenttypes.models import ContentType

        if db not in made:
            send(verbosity, interactive, db, **kwargs)
            made[db] = rows_of_every_model(db)
            return
        with transaction.atomic(using=db):
            for model, values in made[db]:
                model._base_manager.using(db).bulk_create([model(**row) for row in values])
        ContentType.objects.clear_cache()

    flush.emit_post_migrate_signal = emit_post_migrate_signal  # type: ignore[attr-defined]
