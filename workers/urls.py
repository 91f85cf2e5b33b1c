from django.urls import path

from workers import api

urlpatterns = [
    path("directives/", api.DirectiveListCreate.as_view(), name="directive-list"),
    path("directives/<str:pk>/", api.DirectiveDetail.as_view(), name="directive-detail"),
]
