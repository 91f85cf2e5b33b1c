from django.urls import path

from organization import api as organization_api
from workers import api, environment_api, grants_api, signals_api

urlpatterns = [
    path("directives/", api.DirectiveListCreate.as_view(), name="directive-list"),
    path("directives/<str:pk>/", api.DirectiveDetail.as_view(), name="directive-detail"),
    path("signals/", signals_api.SignalListCreate.as_view(), name="signal-list"),
    path(
        "environment-signals/",
        environment_api.EnvironmentSignalCreate.as_view(),
        name="environment-signal-create",
    ),
    path("grants/", grants_api.GrantCreate.as_view(), name="grant-create"),
    path("nodes/", organization_api.NodeList.as_view(), name="node-list"),
    path("nodes/<str:pk>/", organization_api.NodeDetail.as_view(), name="node-detail"),
    path(
        "nodes/<str:pk>/fitness/", organization_api.NodeFitnessView.as_view(), name="node-fitness"
    ),
]
