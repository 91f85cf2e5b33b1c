"""One permission per operation, checked the same way at every edge (docs/operations.md, "Roles").

- The REST API: ``RolePermission`` (in DRF's defaults, after IsAuthenticated) reads the view's
  ``needs``, a map from HTTP method to permission; a method the view serves without a rule is
  refused, so a new endpoint without one fails closed (and fails the permission matrix test).
- The pages: ``@page_needs(permission)`` sends anonymous visitors to the login page and
  answers 403 with the reason to a logged-in user without the permission.
- The websockets: ``denial(user, permission)`` before accepting; the consumer closes with
  4403 and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from organization.roles import roles_with

CLOSE_FORBIDDEN = 4403
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def denial(user: Any, permission: str, *, action: str = "do this") -> str | None:
    """Why ``user`` may not ``action`` (None when they may): which permission, which roles."""
    if user is not None and user.is_active and user.has_perm(permission):
        return None
    name = getattr(user, "username", "") or "this user"
    roles = roles_with(permission)
    if not roles:
        return f"{name} may not {action}: it needs the {permission} permission, which no role has"
    if len(roles) == 1:
        holders = f"the {roles[0]} role has"
    else:
        holders = f"the {', '.join(roles[:-1])} and {roles[-1]} roles have"
    return (
        f"{name} may not {action}: it needs the {permission} permission, which {holders} "
        f"(an admin grants a role with 'python manage.py role_assign {name} {roles[0]}')"
    )


class RolePermission(BasePermission):
    """The permission the view's ``needs`` names for this request's method."""

    message = "This endpoint declares no permission for this method, so nobody may use it."

    def has_permission(self, request: Request, view: Any) -> bool:
        method = request.method or "GET"
        if method.lower() not in _served_methods(view):
            return True  # DRF answers 405 next
        needs: dict[str, str] = getattr(view, "needs", {})
        permission = needs.get(method) or (needs.get("GET") if method in SAFE_METHODS else None)
        if permission is None:
            return False
        reason = denial(request.user, permission, action=f"{method} {request.path}")
        if reason is not None:
            self.message = reason
            return False
        return True


def _served_methods(view: Any) -> set[str]:
    return {name for name in view.http_method_names if hasattr(view, name)}


def page_needs(
    permission: str, *, action: str = "see this page"
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A page view for users with ``permission``: anonymous → login page, others → 403."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            reason = denial(request.user, permission, action=action)
            if reason is not None:
                return forbidden(request, reason)
            return view(request, *args, **kwargs)

        return login_required(checked)

    return decorate


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    """A 403 that says why: the whole page, or for htmx only the message to swap in."""
    if request.headers.get("HX-Request") == "true":
        body = render_to_string("403_fragment.html", {"reason": reason}, request=request)
        # Wherever the button meant to swap, the refusal goes at the top of the content.
        headers = {"HX-Retarget": "#content", "HX-Reswap": "afterbegin"}
        return HttpResponse(body, status=403, headers=headers)
    return HttpResponse(
        render_to_string("403.html", {"reason": reason}, request=request), status=403
    )
