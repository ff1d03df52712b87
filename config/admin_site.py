"""The staff site: django-otp's admin, where staff land on the support queue after sign-in."""

from __future__ import annotations

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_otp.admin import OTPAdminSite


class StaffAdminSite(OTPAdminSite):
    """OTP-protected admin whose sign-in leads to the queue unless it was sent elsewhere.

    The queue sends staff without a support role on to the admin index.
    """

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            query = request.GET.copy()
            query[REDIRECT_FIELD_NAME] = reverse("admin:support_queue", current_app=self.name)
            request.GET = query  # type: ignore[assignment]
        return super().login(request, extra_context)
