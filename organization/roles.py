"""Roles: who may do what (docs/operations.md, "Roles").

A role is a Django group holding permissions. The groups are kept in step with ``ROLES`` after
every ``migrate`` (``vsmsite.apps``), so a fresh database has them and a changed table here
reaches existing ones; ``manage.py role_assign`` puts users in them. Every edge (the REST API,
the pages, the websockets) asks for one permission per operation (``organization.access``), never
for a role by name: a superuser has every permission, and a site may build its own groups.

- viewer: reads everything (pages, API reads, live streams, the ledger).
- operator: a viewer who submits directives, raises signals, pauses and resumes subtrees, and
  runs a check of the ledger.
- approver: a viewer who approves and rejects trials, rolls the genome back, checks the ledger.
- admin: everything, including budget grants and the registry of acceptance verifiers (the
  shell commands a directive's checks may run), and the Django admin.
"""

from __future__ import annotations

from dataclasses import dataclass

VIEW = "organization.view_organization"
SUBMIT_DIRECTIVE = "workers.submit_directive"
RAISE_SIGNAL = "workers.raise_signal"
GRANT_BUDGET = "workers.grant_budget"
APPROVE_TRIAL = "trials.approve_trial"
ROLLBACK_GENOME = "organization.rollback_genome"
VERIFY_LEDGER = "ledger.verify_ledger"
# What the Django admin shows: approvers see the trials and genome versions they decide on;
# admins see every table and edit the beat schedule (the periodic audits and generations).
APPROVER_ADMIN_VIEWS = (
    "trials.view_trial",
    "trials.view_genesuggestion",
    "trials.view_trialapproval",
    "trials.view_archiverecord",
    "organization.view_genomeversion",
)
ADMIN_SITE_PERMISSIONS = (
    *APPROVER_ADMIN_VIEWS,
    "organization.view_championpointer",
    "organization.view_node",
    "organization.view_subtreepause",
    "ledger.view_ledgerevent",
    "ledger.view_tasktrace",
    "trials.view_auditrun",
    "trials.view_evolutiongeneration",
    "workers.view_directive",
    "workers.view_task",
    "workers.view_envelope",
    "workers.view_algedonicsignalrecord",
    "workers.view_blockedroute",
    "workers.view_resourceepoch",
    "workers.view_resourcegrant",
    "workers.view_deferredtask",
    "django_celery_beat.view_periodictask",
    "django_celery_beat.change_periodictask",
    "auth.view_user",
)
VERIFIER_PERMISSIONS = (
    "workers.view_acceptanceverifier",
    "workers.add_acceptanceverifier",
    "workers.change_acceptanceverifier",
    "workers.delete_acceptanceverifier",
)


@dataclass(frozen=True)
class Role:
    name: str
    summary: str
    permissions: tuple[str, ...]
    # Approvers decide trials in the Django admin; admins run it. Both need is_staff to log in.
    uses_admin_site: bool = False


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role("viewer", "reads the organization, its work and its ledger", (VIEW,)),
        Role(
            "operator",
            "submits directives, raises signals, pauses and resumes subtrees",
            (VIEW, SUBMIT_DIRECTIVE, RAISE_SIGNAL, VERIFY_LEDGER),
        ),
        Role(
            "approver",
            "approves and rejects trials, rolls the genome back",
            (VIEW, APPROVE_TRIAL, ROLLBACK_GENOME, VERIFY_LEDGER, *APPROVER_ADMIN_VIEWS),
            uses_admin_site=True,
        ),
        Role(
            "admin",
            "everything: budget grants, acceptance verifiers, the Django admin",
            (
                VIEW,
                SUBMIT_DIRECTIVE,
                RAISE_SIGNAL,
                APPROVE_TRIAL,
                ROLLBACK_GENOME,
                GRANT_BUDGET,
                VERIFY_LEDGER,
                *VERIFIER_PERMISSIONS,
                *ADMIN_SITE_PERMISSIONS,
            ),
            uses_admin_site=True,
        ),
    )
}


def roles_with(permission: str) -> list[str]:
    """The roles that hold ``permission``, in ROLES order (for messages that say whom to ask)."""
    return [role.name for role in ROLES.values() if permission in role.permissions]


def role_groups_sync() -> None:
    """Make each role's group hold exactly its permissions (idempotent; run after migrate).

    Raises LookupError naming a permission that no model declares: a typo in ``ROLES`` must
    fail the migration loudly, not leave a role quietly without a power.
    """
    from django.contrib.auth.models import Group, Permission

    wanted = {name for role in ROLES.values() for name in role.permissions}
    found = {
        f"{permission.content_type.app_label}.{permission.codename}": permission
        for permission in Permission.objects.select_related("content_type")
        if f"{permission.content_type.app_label}.{permission.codename}" in wanted
    }
    missing = sorted(wanted - set(found))
    if missing:
        raise LookupError(f"roles name permissions no model declares: {', '.join(missing)}")
    for role in ROLES.values():
        group, _ = Group.objects.get_or_create(name=role.name)
        group.permissions.set([found[name] for name in role.permissions])


def user_roles_set(*, username: str, roles: list[str], actor: str) -> list[str]:
    """Give ``username`` exactly ``roles`` (other groups untouched); returns the roles it had.

    Approver and admin also get ``is_staff`` (they work in the Django admin); a user left with
    neither loses it, unless a superuser. The change is one ledger event with its actor.
    Raises LookupError for an unknown user or role.
    """
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from ledger import kinds
    from ledger.services import EventDraft, ledger_record

    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise LookupError(
            f"unknown role {', '.join(map(repr, unknown))}; the roles are {', '.join(ROLES)}"
        )
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.select_for_update().filter(username=username).first()
        if user is None:
            raise LookupError(f"no user is called {username!r}")
        role_groups_sync()
        from django.contrib.auth.models import Group

        had = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user.groups.remove(*Group.objects.filter(name__in=ROLES))
        user.groups.add(*Group.objects.filter(name__in=roles))
        staff = user.is_superuser or any(ROLES[name].uses_admin_site for name in roles)
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        ledger_record(
            EventDraft(
                kind=kinds.USER_ROLES_CHANGED,
                actor=actor,
                payload={
                    "username": username,
                    "roles": sorted(set(roles)),
                    "previous_roles": had,
                    "is_staff": staff,
                },
            )
        )
    return had
