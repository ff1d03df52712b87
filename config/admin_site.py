"""The staff site: django-otp's admin, where staff land on the support queue after sign-in."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_otp.admin import OTPAdminSite


class StaffAdminSite(OTPAdminSite):
    """OTP-protected admin whose sign-in leads to the queue unless it was sent elsewhere.

    The queue sends staff without a support role on to the admin index.
    """

    def admin_view(self, view: Callable, cacheable: bool = False) -> Callable:
        """Every staff page, refusing a NUL character in its query string with a 400.

        The admin hands its search, its filters and the autocomplete's term to a database
        query as they come, and PostgreSQL refuses a NUL in any text: a 500 otherwise.
        """
        protected = super().admin_view(view, cacheable)

        def inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if any("\x00" in "".join([key, *values]) for key, values in request.GET.lists()):
                raise BadRequest("A NUL character in the query string.")
            return protected(request, *args, **kwargs)

        return update_wrapper(inner, protected)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            query = request.GET.copy()
            query[REDIRECT_FIELD_NAME] = reverse("admin:support_queue", current_app=self.name)
            request.GET = query  # type: ignore[assignment]
        return super().login(request, extra_context)
