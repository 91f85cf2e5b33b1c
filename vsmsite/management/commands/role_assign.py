"""Give a user exactly the roles named (docs/operations.md, "Roles"); list them without any."""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from organization.roles import ROLES, user_roles_set


class Command(BaseCommand):
    help = (
        "Give USER exactly the ROLEs named ("
        + "; ".join(f"{role.name}: {role.summary}" for role in ROLES.values())
        + "). With --none, take every role away. With USER alone, show its roles; with "
        "nothing, list every user with a role."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?")
        parser.add_argument("roles", nargs="*", metavar="ROLE")
        parser.add_argument("--none", action="store_true", help="Take every role away.")

    def handle(self, *args: Any, **options: Any) -> None:
        username, roles = options["username"], options["roles"]
        users = get_user_model().objects
        if username is None:
            for user in users.filter(groups__name__in=ROLES).distinct().order_by("username"):
                self.stdout.write(f"{user.username}\t{', '.join(self._roles_of(user))}")
            return
        if not roles and not options["none"]:
            found = users.filter(username=username).first()
            if found is None:
                raise CommandError(f"no user is called {username!r}")
            shown = ", ".join(self._roles_of(found)) or "no role"
            superuser = " (superuser)" if found.is_superuser else ""
            self.stdout.write(f"{username}: {shown}{superuser}")
            return
        if roles and options["none"]:
            raise CommandError("name roles or give --none, not both")
        try:
            had = user_roles_set(username=username, roles=roles, actor=f"cli:{getpass.getuser()}")
        except LookupError as error:
            raise CommandError(str(error.args[0])) from error
        before = ", ".join(had) or "no role"
        self.stdout.write(f"{username}: {', '.join(roles) or 'no role'} (was: {before})")

    @staticmethod
    def _roles_of(user: Any) -> list[str]:
        return sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
