"""Routes of the dashboard's pages (``/`` itself is ``home``, in ``vsmsite.urls``)."""

from django.urls import path

from vsmsite.dashboard import genome, ledger, nodes, views

app_name = "dashboard"

urlpatterns = [
    path("tree/", views.tree, name="tree"),
    path("panel/", views.panel, name="panel"),
    path("genome/", genome.history, name="genome"),
    path("genome/diff/", genome.diff, name="genome-diff"),
    path("ledger/", ledger.explorer, name="ledger"),
    path("ledger/checks/", ledger.check_start, name="ledger-check-start"),
    path("ledger/checks/<str:run_id>/", ledger.check_progress, name="ledger-check"),
    # Before the node page: its <path:> would swallow ".../pause/".
    path("nodes/<path:node_id>/pause/", nodes.pause, name="node-pause"),
    path("nodes/<path:node_id>/resume/", nodes.resume, name="node-resume"),
    path("nodes/<path:node_id>/", nodes.node_page, name="node"),
]
