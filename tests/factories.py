"""Personas, one per role (docs/operations.md, "Roles"), an admin (a superuser) and an outsider
(logged in, in no role)."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission, User

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")

    @factory.post_generation
    def password(user: Any, create: bool, extracted: str | None, **kwargs: object) -> None:
        user.set_password(extracted or PASSWORD)
        if create:
            user.save(update_fields=["password"])


def with_roles(username: str, *roles: str) -> User:
    """A user in exactly the groups of ``roles`` (staff if a role uses the admin site).

    Straight into the groups, so that a persona adds no ledger event to the test's ledger;
    ``user_roles_set`` (what ``role_assign`` runs) has tests of its own.
    """
    from django.contrib.auth.models import Group

    from organization.roles import ROLES

    staff = any(ROLES[name].uses_admin_site for name in roles)
    user = UserFactory.create(username=username, is_staff=staff)
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


def admin() -> User:
    return UserFactory.create(username="admin", is_staff=True, is_superuser=True)


def operator() -> User:
    return with_roles("operator", "operator")


def approver() -> User:
    return with_roles("approver", "approver")


def viewer() -> User:
    return with_roles("viewer", "viewer")


def staff_viewer() -> User:
    """Staff who may only look in the admin: the view_ permissions, no role."""
    user = UserFactory.create(username="staff-viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


def outsider() -> User:
    return UserFactory.create(username="outsider")
