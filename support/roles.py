"""Staff roles of the support queue, checked on the server for every action."""

from __future__ import annotations

from accounts.models import User

AGENTS_GROUP = "Support agents"
SUPERVISORS_GROUP = "Supervisors"


def _in_group(user: User, name: str) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.groups.filter(name=name).exists()


def is_supervisor(user: User) -> bool:
    return (user.is_authenticated and user.is_superuser) or _in_group(user, SUPERVISORS_GROUP)


def is_agent(user: User) -> bool:
    """Agents and supervisors both work cases."""
    return _in_group(user, AGENTS_GROUP) or is_supervisor(user)
