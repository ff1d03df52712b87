"""Staff roles of the support queue, checked on the server for every action."""

from __future__ import annotations

from accounts.models import User

AGENTS_GROUP = "Support agents"
SUPERVISORS_GROUP = "Supervisors"


def _group_names(user: User) -> frozenset[str]:
    """The user's group names, read once per user object.

    A request asks several times (admin permission, the page, the action); the answer is
    kept on the object for its lifetime, as Django's ModelBackend keeps permissions.
    """
    try:
        return user._support_group_names
    except AttributeError:
        user._support_group_names = frozenset(user.groups.values_list("name", flat=True))
        return user._support_group_names


def _in_group(user: User, name: str) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return name in _group_names(user)


def is_supervisor(user: User) -> bool:
    return (user.is_authenticated and user.is_superuser) or _in_group(user, SUPERVISORS_GROUP)


def is_agent(user: User) -> bool:
    """Agents and supervisors both work cases."""
    return _in_group(user, AGENTS_GROUP) or is_supervisor(user)
