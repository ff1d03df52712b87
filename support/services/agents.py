"""Creating support staff: an account in its role's group, with an authenticator and codes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from accounts.services.users import user_create, user_permissions_change
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP

ROLE_GROUPS = {"agent": AGENTS_GROUP, "supervisor": SUPERVISORS_GROUP}


@dataclass(frozen=True)
class AgentCreated:
    """The new staff account and what its owner needs once: password, key, backup codes."""

    user: User
    password: str
    device: TOTPDevice
    backup_codes: list[str]


def agent_create(
    *,
    email: str,
    role: str,
    password: str | None = None,
    phone: str | None = None,
    language: str = "en",
    authenticator_key: str | None = None,
    context: AuditContext | None = None,
) -> AgentCreated:
    """Create an agent or supervisor with a confirmed authenticator and backup codes.

    The password (a random one when none is given) must pass the project's password
    validators, as on every other path that sets one. Everything is written in one
    transaction: a refused password, a taken email or an unknown role raise
    ValidationError and leave nothing behind. The account, its role and its authenticator
    are each a security event. `authenticator_key` (hex) lets the demo seed give its
    staff the same authenticator on every run; operators get a fresh one.
    """
    if role not in ROLE_GROUPS:
        raise ValidationError(
            f"Unknown role {role!r}: use one of {', '.join(sorted(ROLE_GROUPS))}."
        )
    email = email.strip().lower()
    password = password or secrets.token_urlsafe(16)
    validate_password(password, user=User(email=email))
    context = context or AuditContext()
    taken = f"An account with the email {email} already exists."
    try:
        with transaction.atomic():
            if User.objects.filter(email=email).exists():
                raise ValidationError(taken)
            user = user_create(
                email=email,
                password=password,
                phone=phone,
                language=language,
                is_staff=True,
                context=context,
            )
            group, _created = Group.objects.get_or_create(name=ROLE_GROUPS[role])
            user_permissions_change(
                user=user,
                is_active=True,
                is_staff=True,
                is_superuser=False,
                groups=[group],
                context=context,
            )
            device, codes = two_factor_provision(
                user=user, context=context, key=authenticator_key, notify=False
            )
    except IntegrityError:
        # A second operator created the same account at the same moment: the unique index
        # decides, and this run leaves nothing behind.
        raise ValidationError(taken) from None
    return AgentCreated(user=user, password=password, device=device, backup_codes=codes)
