"""Page routes of the trials app and, in ``api_urlpatterns``, its API under /api/."""

from django.urls import path

from trials import api, views

app_name = "trials"

urlpatterns = [
    path("trials/", views.inbox, name="inbox"),
    path("trials/<str:trial_id>/", views.detail, name="detail"),
    path("trials/<str:trial_id>/approve/", views.approve, name="approve"),
    path("trials/<str:trial_id>/reject/", views.reject, name="reject"),
]

# Under /api/ (vsmsite/urls.py): the REST edges, in ``trials.api``.
api_urlpatterns = [
    path("trials/", api.TrialList.as_view(), name="trial-list"),
    path("trials/<str:pk>/", api.TrialDetail.as_view(), name="trial-detail"),
    path("trials/<str:pk>/approve/", api.TrialApprove.as_view(), name="trial-approve"),
    path("trials/<str:pk>/reject/", api.TrialReject.as_view(), name="trial-reject"),
]
