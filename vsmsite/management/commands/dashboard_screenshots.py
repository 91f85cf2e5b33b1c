"""``python manage.py dashboard_screenshots``: a picture of every dashboard page, for the docs.

It runs ``evolution_demo`` in a fresh embedded organization of its own (``var/screenshots/``:
SQLite, nothing of yours touched), so the pages show a real history (directives, traces, a
decided trial, genome versions, the ledger), serves it with daphne, and photographs each page
in headless Chromium (Debian's ``/usr/bin/chromium``, through Playwright; nothing is
downloaded) into ``docs/screenshots/``, light and dark for the overview.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]
USERNAME = "screenshots"
PASSWORD = "screenshots-only-password"  # of a throwaway database under var/screenshots/
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1280, 860
DAPHNE = [sys.executable, "-m", "daphne", "-b", "127.0.0.1"]


class Command(BaseCommand):
    help = (
        "Photograph every dashboard page of a freshly run demo organization into "
        "docs/screenshots/ (needs Debian's chromium; takes about a minute)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out", default=None, help="Where the PNGs go (default docs/screenshots/)."
        )
        parser.add_argument(
            "--reuse", action="store_true", help="Photograph the demo already in var/screenshots/."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not CHROMIUM.exists():
            raise CommandError(
                f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
            )
        out = Path(options["out"] or settings.BASE_DIR / "docs" / "screenshots").resolve()
        var_dir = (settings.BASE_DIR / "var" / "screenshots").resolve()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
        }
        env.update({"VSM_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"})
        manage = [sys.executable, "manage.py"]
        if not options["reuse"] or not (var_dir / "db.sqlite3").exists():
            self.stdout.write("==> running the evolution demo for something to show (~1 min)")
            demo = [*manage, "evolution_demo", "--var-dir", str(var_dir)]
            if subprocess.call(demo, cwd=settings.BASE_DIR, env=env) != 0:
                raise CommandError("the evolution demo failed; its output is above")
        self._run(manage, "shell", "-c", _MAKE_USER, env=env)
        out.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        daphne = subprocess.Popen(
            [*DAPHNE, "-p", str(port), "vsmsite.asgi:application"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(f"{url}/login/", daphne)
            ids = self._ids(manage, env)
            taken = _photograph(url, out, ids)
        finally:
            os.killpg(daphne.pid, signal.SIGTERM)
            daphne.wait(timeout=15)
        for path in taken:
            shown = (
                path.relative_to(settings.BASE_DIR)
                if path.is_relative_to(settings.BASE_DIR)
                else path
            )
            self.stdout.write(f"wrote {shown}")
        shutil.rmtree(var_dir / "workspaces", ignore_errors=True)

    def _run(self, manage: list[str], *argv: str, env: dict[str, str]) -> str:
        done = subprocess.run(
            [*manage, *argv], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise CommandError(f"{' '.join(argv[:2])} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def _ids(self, manage: list[str], env: dict[str, str]) -> dict[str, str]:
        lines = self._run(manage, "shell", "-c", _FIND_IDS, env=env).strip().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)


_MAKE_USER = f"""
from django.contrib.auth import get_user_model
users = get_user_model().objects
user = users.filter(username={USERNAME!r}).first() or users.create_superuser({USERNAME!r}, "")
user.set_password({PASSWORD!r})
user.save()
"""

_FIND_IDS = """
from organization.selectors import champion_version_id
from organization.models import Node
from trials.models import Trial
from workers.models import Directive
node = Node.objects.filter(parent_id__isnull=False).order_by("position").first()
trial = Trial.objects.order_by("-queued_at").first()
print(f"node={node.id if node else ''}")
print(f"trial={trial.id if trial else ''}")
print(f"champion={champion_version_id() or ''}")
directive = Directive.objects.order_by("-created_at").first()
print(f"directive={directive.id if directive else ''}")
"""


def _photograph(url: str, out: Path, ids: dict[str, str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    pages = [
        ("overview", "/"),
        ("node", f"/nodes/{ids.get('node') or 'root-codebase-system'}/"),
        ("directives", "/directives/"),
        (
            "directive",
            f"/directives/{ids['directive']}/" if ids.get("directive") else "/directives/",
        ),
        ("genome", "/genome/"),
        ("genome-diff", f"/genome/diff/?to={ids.get('champion', '')}"),
        ("ledger", "/ledger/"),
        ("trials", "/trials/"),
        ("trial", f"/trials/{ids['trial']}/" if ids.get("trial") else "/trials/"),
        ("alarms", "/alarms/"),
    ]
    taken = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT},
                    color_scheme=scheme,
                )
                page = context.new_page()
                page.goto(f"{url}/login/")
                page.fill("#id_username", USERNAME)
                page.fill("#id_password", PASSWORD)
                page.click("input[type=submit]")
                page.wait_for_url(f"{url}/")
                for name, path in pages if scheme == "light" else pages[:1]:
                    page.goto(f"{url}{path}")
                    page.wait_for_load_state("networkidle")
                    target = out / (f"{name}.png" if scheme == "light" else f"{name}-dark.png")
                    page.screenshot(path=str(target), full_page=False)
                    taken.append(target)
                context.close()
        finally:
            browser.close()
    return taken


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError("daphne stopped before it served a page")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise CommandError(f"daphne did not answer {url} within 60 s")
