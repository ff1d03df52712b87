"""Project-wide request guards that must run before any view reads the request."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
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
