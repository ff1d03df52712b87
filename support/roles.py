"""Staff roles of the support queue, checked on the server for every action."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from accounts.models import User

# A request's user: signed in, or not.
AnyUser = User | AnonymousUser

AGENTS_GROUP = "Support agents"
SUPERVISORS_GROUP = "Supervisors"


def _group_names(user: User) -> frozenset[str]:
    """The user's group names, read once per user object.

    A request asks several times (admin permission, the page, the action); the answer is
    kept on the object for its lifetime, as Django's ModelBackend keeps permissions.
    """
    cached = user.__dict__.get("_support_group_names")
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user.__dict__["_support_group_names"] = cached
    return cached


def _in_group(user: AnyUser, name: str) -> bool:
    if not (isinstance(user, User) and user.is_active and user.is_staff):
        return False
    return name in _group_names(user)


def is_supervisor(user: AnyUser) -> bool:
    return (isinstance(user, User) and user.is_superuser) or _in_group(user, SUPERVISORS_GROUP)


def is_agent(user: AnyUser) -> bool:
    """Agents and supervisors both work cases."""
    return _in_group(user, AGENTS_GROUP) or is_supervisor(user)
