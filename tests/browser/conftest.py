"""Browser tests: Debian's Chromium driven by Playwright against daphne bound to the test database.

Nothing is downloaded: Playwright's Python package brings its driver, and the
browser is ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run``
installs it). Never ``playwright install``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from tests.support.processes import BASE_DIR, free_port, process_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

try:
    import playwright.sync_api  # noqa: F401

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - requirements.txt pins it
    HAVE_PLAYWRIGHT = False

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() or not HAVE_PLAYWRIGHT,
    reason=(
        "browser tests need Debian's Chromium at /usr/bin/chromium "
        "(apt-get install -y chromium) and the playwright package (requirements.txt)"
    ),
)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The test database's environment, without the test process's async-safety exemption."""
    env = process_env(**extra)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-200:])


def _status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


@pytest.fixture
def daphne_server(transactional_db: None) -> Iterator[Server]:
    """daphne (HTTP and websockets) on a free port, bound to the test database."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "vsmsite.asgi:application",
        ],
        cwd=BASE_DIR,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    server = Server(url=f"http://127.0.0.1:{port}", process=process)
    reader = threading.Thread(
        target=lambda: server.lines.extend(line.rstrip() for line in process.stdout or []),
        daemon=True,
    )
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while _status_of(f"{server.url}/admin/login/") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start:\n{server.output}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        reader.join(timeout=5)


@pytest.fixture
def allow_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API keeps an event loop running in this thread; the ORM refuses
    to run beside one unless told it is safe (it is: the loop only drives the browser)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser_page(allow_orm_beside_playwright: None) -> Iterator[Any]:
    """A fresh page in headless Debian Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            # Beside Playwright's loop the ORM works on connections of their own; close
            # them here, or the test database cannot be dropped at the end of the run.
            connections.close_all()
            browser.close()


@pytest.fixture(autouse=True)
def _server_readable_password_hashes(settings: Any) -> None:
    """The daphne process checks logins with the production hashers, which do not include the
    cheap one the rest of the suite hashes with (tests/conftest.py): users made here get a
    hash it can read."""
    settings.PASSWORD_HASHERS = [
        hasher for hasher in settings.PASSWORD_HASHERS if "MD5" not in hasher
    ]
