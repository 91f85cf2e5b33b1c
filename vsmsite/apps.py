from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.db.models.signals import post_migrate


class VsmsiteConfig(AppConfig):
    name = "vsmsite"
    verbose_name = "VSM site"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, dispatch_uid="vsmsite.roles")
        if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
            from vsmsite.postgres import cache_long_statements

            cache_long_statements()


def _sync_roles(sender: AppConfig, **kwargs: Any) -> None:
    """Keep the role groups in step with ``organization.roles.ROLES`` after every migrate.

    post_migrate is sent once per app with models, in INSTALLED_APPS order, and auth creates
    each app's permissions on its turn: on the last one's, every permission exists.
    """
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if sender is not with_models[-1]:
        return
    from organization.roles import role_groups_sync

    role_groups_sync()
