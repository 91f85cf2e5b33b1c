"""ASGI entry point: HTTP through Django, websockets through Channels consumers."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")

# Django must be set up before anything imports models (consumers, routing).
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

from vsmsite.web import WebHandler  # noqa: E402

# HTTP: at most VSM_WEB_MAX_REQUESTS at once, each closing its database connection when
# it ends (vsmsite/web.py says why); docs/operations.md, "The web process".
django_asgi_app = WebHandler(max_requests=settings.VSM_WEB_MAX_REQUESTS)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from vsmsite.api_input import WebsocketNulGuard  # noqa: E402
from vsmsite.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketNulGuard(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
