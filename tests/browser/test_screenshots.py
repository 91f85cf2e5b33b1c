"""``manage.py dashboard_screenshots`` photographs every page of a fresh demo, as the README
says anyone can rerun it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.conftest import needs_chromium

PAGES = [
    "overview",
    "node",
    "directives",
    "directive",
    "genome",
    "genome-diff",
    "ledger",
    "trials",
    "trial",
]


@needs_chromium
@pytest.mark.slow
def test_the_screenshot_command_writes_a_png_of_every_page(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "dashboard_screenshots", "--out", str(tmp_path)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    for name in [*PAGES, "alarms", "overview-dark"]:
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, f"{name}.png is too small to show a page"
