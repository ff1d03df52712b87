"""URLs of the service API under /api/v1/ (paths are part of the contract with the exchange)."""

from __future__ import annotations

from django.urls import path, re_path

from api import views

urlpatterns = [
    path("accounts/<str:account_id>/restrictions", views.restrictions, name="api_restrictions"),
    path("openapi.json", views.openapi_schema, name="api_openapi"),
    re_path(r"^(?P<path>.*)$", views.not_found),
]
