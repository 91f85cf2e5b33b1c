"""`manage.py check --deploy` is clean under the production environment docs/operations.md lists."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import BASE_DIR

pytestmark = pytest.mark.slow  # each test starts a Python process

PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "vsm.example.org",
    "DJANGO_HTTPS": "true",
    "DATABASE_URL": "postgres://vsm@db.internal:5432/vsm",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def deploy_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DJANGO_") and name not in {"DATABASE_URL", "REDIS_URL"}
    }
    clean.update(DJANGO_SETTINGS_MODULE="vsmsite.settings", VSM_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
    )


def test_the_production_environment_passes_the_deploy_check(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_development_defaults_fail_it_naming_what_production_must_set(
    tmp_path: Path,
) -> None:
    result = deploy_check(tmp_path)

    assert result.returncode != 0
    for warning in ("W004", "W008", "W009", "W012", "W016"):  # HSTS, HTTPS, key, cookies
        assert f"security.{warning}" in result.stderr, result.stderr
    assert "security.W018" not in result.stderr  # DEBUG is off unless asked for


def test_debug_asked_for_fails_it(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **PRODUCTION, DJANGO_DEBUG="true")

    assert result.returncode != 0
    assert "security.W018" in result.stderr
