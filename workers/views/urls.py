"""Page routes of the workers app (its API routes are in ``workers.urls``, under /api/)."""

from django.urls import path

from workers.views import alarms, directive_detail, directive_submit, directives

app_name = "workers"

urlpatterns = [
    path("alarms/", alarms.alarms, name="alarms"),
    path("directives/", directives.directive_list, name="directives"),
    path("directives/new/", directive_submit.directive_submit_form, name="directive-submit"),
    path("directives/<str:directive_id>/", directive_detail.directive_page, name="directive"),
    path(
        "directives/<str:directive_id>/live/",
        directive_detail.directive_live,
        name="directive-live",
    ),
    path("alarms/nodes/<path:node_id>/pause/", alarms.node_pause, name="node-pause"),
    path("alarms/nodes/<path:node_id>/resume/", alarms.node_resume, name="node-resume"),
]
