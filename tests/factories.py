"""Personas: an operator (superuser), a viewer (staff who may only look) and an outsider."""

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


def operator() -> User:
    return UserFactory.create(username="operator", is_staff=True, is_superuser=True)


def viewer() -> User:
    user = UserFactory.create(username="viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


def outsider() -> User:
    return UserFactory.create(username="outsider")
