from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from organization import api as organization_api
from trials import urls as trials_urls
from vsmsite import api_input
from vsmsite.dashboard import views as dashboard_views
from vsmsite.schema import CachedSpectacularAPIView

urlpatterns = [
    path("", dashboard_views.home, name="home"),
    path("", include("vsmsite.dashboard.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("workers.views.urls")),
    path("", include("trials.urls")),
    path("api/", include("workers.urls")),
    path("api/", include(trials_urls.api_urlpatterns)),
    path("api/genome/rollback/", organization_api.GenomeRollback.as_view(), name="genome-rollback"),
    path("api/schema/", CachedSpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

# Under /api/ Django's own error pages answer JSON too (vsmsite/api_input.py).
handler400 = api_input.bad_request
handler404 = api_input.not_found
handler500 = api_input.server_error
