"""Create the local operator account (in the operator role) and print its password."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from organization.roles import user_roles_set


class Command(BaseCommand):
    help = (
        "Create a local account in the operator role (directives, signals, pause and resume; "
        "docs/operations.md, 'Roles') for the dashboard, with a random password "
        "that is printed and kept in var/operator-password (readable by you only). Re-running "
        "prints the kept password again; --reset-password makes a new one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="operator")
        parser.add_argument("--reset-password", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        password_file = settings.VAR_DIR / f"{username}-password"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        kept = password_file.read_text().strip() if password_file.exists() else ""
        if (
            user is not None
            and kept
            and user.check_password(kept)
            and not options["reset_password"]
        ):
            self.stdout.write(f"operator account: {username} / {kept}")
            return
        if user is not None and not options["reset_password"]:
            self.stdout.write(
                f"operator account {username!r} exists with a password not kept here; "
                "run with --reset-password to set a new one"
            )
            return
        password = secrets.token_urlsafe(12)
        if user is None:
            user = user_model.objects.create_user(username=username, email="", password=password)
            user_roles_set(username=username, roles=["operator"], actor="cli:operator_create")
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.stdout.write(f"operator account: {username} / {password}")
        self.stdout.write(
            f"  it may submit directives, raise signals, pause and resume; to approve trials "
            f"or run the admin too: python manage.py role_assign {username} operator approver"
        )
