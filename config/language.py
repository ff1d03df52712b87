"""The language switch: a plain link per language that sets the language cookie and goes back."""

from __future__ import annotations

from typing import Literal, cast

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


def _safe_next(request: HttpRequest) -> str:
    """The page to go back to: a path of this site, else the start page.

    A `next` naming another host or scheme is refused, so the switch can never be used to
    send a customer from our address to a look-alike site (an open redirect).
    """
    candidate = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(
        url=candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return "/"


@require_safe
@never_cache
def language_switch(request: HttpRequest, language: str) -> HttpResponse:
    """Remember `language` in the language cookie and redirect to a page of this site.

    A GET may do this because the cookie is a display preference and nothing else: no account,
    factor, contact or hold changes, so a link from another site can at worst change the
    language a page is shown in. A signed-in customer's stored language follows on the next
    page, as it does whenever the browser's language changes.
    """
    if language not in dict(settings.LANGUAGES):
        raise Http404
    response = HttpResponseRedirect(_safe_next(request))
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=cast(Literal["Lax", "Strict", "None"], settings.LANGUAGE_COOKIE_SAMESITE),
    )
    return response
