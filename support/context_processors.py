"""Template context for the admin: the burst guard's holds, shown to supervisors as a banner."""

from __future__ import annotations

from django.http import HttpRequest

from support.roles import is_supervisor


def delivery_holds(request: HttpRequest) -> dict:
    if not request.path.startswith("/admin/") or not is_supervisor(request.user):
        return {}
    from notifications.selectors import delivery_holds_active

    return {"delivery_holds": delivery_holds_active()}
