"""The project's URLs, plus the benchmarks' floor: the least a POST costs in this stack."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def floor(request: HttpRequest) -> HttpResponse:
    """A form page and its POST that do nothing: the same middleware, CSRF check and
    gunicorn as the real form, with no form, database or template work of its own."""
    if request.method == "POST":
        return HttpResponse("ok")
    token = get_token(request)
    return HttpResponse(f'<input name="csrfmiddlewaretoken" value="{token}">')


urlpatterns = [path("bench/floor/", floor), *project_urlpatterns]
