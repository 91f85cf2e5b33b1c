from django.urls import path

from organization import views

app_name = "organization"

urlpatterns = [
    path("alarms/", views.alarms, name="alarms"),
    path("alarms/nodes/<path:node_id>/pause/", views.node_pause, name="node-pause"),
    path("alarms/nodes/<path:node_id>/resume/", views.node_resume, name="node-resume"),
]
