"""The development inbox page (/dev/inbox/): what the app sent, shown only with DEBUG on."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from notifications.devinbox import dev_inbox_list


def dev_inbox(request: HttpRequest) -> HttpResponse:
    """Every email and SMS the app sent, newest first; exists only with DEBUG on."""
    if not settings.DEBUG:
        raise Http404
    return render(request, "notifications/dev_inbox.html", {"messages_sent": dev_inbox_list()})
