"""Project-wide request guards that must run before any view reads the request."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _


class UndecodableRequestMiddleware:
    """Answer 400 to a body in a character set Python does not know.

    Django would raise LookupError when a form first reads `request.POST` (and again while
    rendering the error page): a 500 from one header. Known charsets that fail to decode
    already end in Django's own 400.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        charset = request.content_params.get("charset") if request.content_params else None
        if charset:
            try:
                codecs.lookup(charset)
            except LookupError:
                return HttpResponseBadRequest(
                    _("The request could not be read."), content_type="text/plain; charset=utf-8"
                )
        return self.get_response(request)


ALREADY_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


class PrivatePagesNoStoreMiddleware:
    """Tell browsers and proxies to keep no copy of account, recovery and staff pages.

    These pages show authenticator keys, backup codes, case details and contact data; a
    shared computer's back button or a caching proxy must not bring them back.
    """

    # The service API sets its own documented `no-store`.
    PRIVATE_PREFIXES = ("/accounts/", "/account/", "/recover/", "/admin/", "/dev/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self.PRIVATE_PREFIXES):
            add_never_cache_headers(response)
            # Django's Expires is the current second: two answers a second apart would
            # differ in a header, which the same-answer comparisons must not see.
            response["Expires"] = ALREADY_EXPIRED
        return response
