"""Account changes outside 2FA: signup, duplicate-phone notice, sessions, contacts, roles;
the sign-in history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Subquery
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.contacts import InvalidPhoneNumber, mask_email, mask_phone, phone_to_e164
from accounts.models import SecurityEvent, SignIn, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.holds import security_changes_check
from notifications.models import Notification
from notifications.services import notification_queue


def user_signup_record(*, user: User, context: AuditContext) -> SecurityEvent:
    return security_event_record(
        user=user, type=SecurityEvent.Type.SIGNED_UP, context=context, notify=False
    )


def phone_taken_notify(*, phone: str, attempt_key: str, language: str) -> Notification | None:
    """Tell the holder of a phone number that someone tried to sign up with it.

    The text names the existing account's login email, masked, so an honest customer who
    forgot which email they used learns it, and a stranger learns nothing.
    """
    holder = User.objects.filter(phone=phone).first()
    if holder is None:
        return None
    return notification_queue(
        channel=Notification.Channel.SMS,
        recipient=phone,
        template_key="accounts/account_exists",
        idempotency_key=f"account-exists:{holder.pk}:{attempt_key}",
        language=holder.language or language,
        context={"masked_email": mask_email(holder.email)},
        account_id=holder.pk,
    )


def user_sessions_end_others(
    *, user: User, current_session_key: str | None, context: AuditContext
) -> int:
    """Sign the user out of every session but the current one; returns how many ended."""
    with transaction.atomic():
        sessions = [
            s for s in UserSession.objects.filter(user=user) if s.session_key != current_session_key
        ]
        for session in sessions:
            session.end()
        if sessions:
            security_event_record(
                user=user,
                type=SecurityEvent.Type.SESSIONS_ENDED,
                context=context,
                details={"count": len(sessions)},
            )
    return len(sessions)


def user_sessions_end_all(*, user: User) -> int:
    """End every session of the user (the caller records why)."""
    sessions = list(UserSession.objects.filter(user=user))
    for session in sessions:
        session.end()
    return len(sessions)


def user_email_change(
    *, user: User, new_email: str, context: AuditContext, staff: Sequence[int] = ()
) -> SecurityEvent:
    """Change the login email at once; the notice goes to the new and the old address.

    `staff` names every staff member the change rests on (none for self-service); none of
    them may lift the hold it sets.
    """
    with transaction.atomic():
        old_email = user.email
        user.email = new_email.lower()
        user.full_clean(exclude=["password"])
        user.save(update_fields=["email"])
        EmailAddress.objects.filter(user=user).delete()
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
        staff_named = {"staff": list(staff)} if staff else {}
        return security_event_record(
            user=user,
            type=SecurityEvent.Type.EMAIL_CHANGED,
            context=context,
            details={"old_email": mask_email(old_email), **staff_named},
            former_emails=[old_email],
        )


class PasswordChangedMeanwhile(PermissionDenied):
    """The password is no longer the one the request was checked against: another request
    with the same reset link or the same current password won, and this one changes nothing."""


def user_password_set(*, user: User, password: str) -> None:
    """Set the password of allauth's change and reset pages, once per reset link or current
    password; refused during a security hold.

    A reset link is derived from the password it replaces, and the change form checked the
    current one: `user` carries the password hash that request saw. Under the row lock a
    different stored hash means another request set a password first
    (`PasswordChangedMeanwhile`). Only the password column is written, so a freeze or hold
    that landed while this request ran stays in place.
    """
    with transaction.atomic():
        stored = User.objects.select_for_update().values_list("password", flat=True).get(pk=user.pk)
        security_changes_check(user=user)
        if stored != user.password:
            raise PasswordChangedMeanwhile
        user.set_password(password)
        user.save(update_fields=["password"])


def _phone_normalized(phone: str | None) -> str | None:
    if not phone:
        return None
    try:
        return phone_to_e164(phone)
    except InvalidPhoneNumber:
        raise ValidationError(
            {"phone": _("Enter a valid phone number, for example +49 151 23456789.")},
            code="invalid",
        ) from None


def user_phone_change(*, user: User, new_phone: str | None, context: AuditContext) -> SecurityEvent:
    """Change (or remove) the phone on file at once.

    The phone receives codes and recovery messages, so the notice goes to the email on
    file, the new number and the old one. Refused during a security hold.
    """
    with transaction.atomic():
        security_changes_check(user=user)
        old_phone = user.phone
        user.phone = _phone_normalized(new_phone)
        user.full_clean(exclude=["password"])
        user.save(update_fields=["phone"])
        return security_event_record(
            user=user,
            type=SecurityEvent.Type.PHONE_CHANGED,
            context=context,
            details={"old_phone": mask_phone(old_phone), "new_phone": mask_phone(user.phone)},
            former_phones=[old_phone] if old_phone else [],
        )


def user_permissions_change(
    *,
    user: User,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    groups: Iterable[Group],
    context: AuditContext,
) -> SecurityEvent | None:
    """Set who may sign in and who is staff, in which groups; None when nothing changed.

    A change is recorded with the flags before and after and the groups added and removed,
    so the audit shows who gave whom which role.
    """
    with transaction.atomic():
        wanted = {"is_active": is_active, "is_staff": is_staff, "is_superuser": is_superuser}
        flags = {
            field: [getattr(user, field), value]
            for field, value in wanted.items()
            if getattr(user, field) != value
        }
        groups = list(groups)
        old_names = set(user.groups.values_list("name", flat=True))
        new_names = {group.name for group in groups}
        if not flags and old_names == new_names:
            return None
        if flags:
            for field, (_old, new) in flags.items():
                setattr(user, field, new)
            user.save(update_fields=list(flags))
        details: dict[str, object] = dict(flags)
        if old_names != new_names:
            user.groups.set(groups)
            details["groups_added"] = sorted(new_names - old_names)
            details["groups_removed"] = sorted(old_names - new_names)
        return security_event_record(
            user=user, type=SecurityEvent.Type.PERMISSIONS_CHANGED, context=context, details=details
        )


def user_update(
    *,
    user: User,
    language: str,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    groups: Iterable[Group],
    context: AuditContext,
) -> list[SecurityEvent]:
    """Apply a staff member's edit of an account; returns the security events it recorded.

    Staff change the language, the right to sign in and roles; a change of role or of the
    right to sign in is recorded. The login email and the phone are not staff edits: they
    change only through the recovery policy (support's email change, the self-service flows).
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        events = []
        if language != user.language:
            user.language = language
            user.full_clean(exclude=["password"])
            user.save(update_fields=["language"])
        permissions = user_permissions_change(
            user=user,
            is_active=is_active,
            is_staff=is_staff,
            is_superuser=is_superuser,
            groups=groups,
            context=context,
        )
        if permissions is not None:
            events.append(permissions)
    return events


def user_create(
    *,
    email: str,
    password: str | None,
    phone: str | None = None,
    language: str = "en",
    is_staff: bool = False,
    is_superuser: bool = False,
    context: AuditContext | None = None,
) -> User:
    """Create an account with a verified email address (operators and the demo seed)."""
    with transaction.atomic():
        user = User(
            email=email.lower(),
            phone=phone or None,
            language=language,
            is_staff=is_staff,
            is_superuser=is_superuser,
        )
        user.set_password(password) if password else user.set_unusable_password()
        user.full_clean()
        user.save()
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
        security_event_record(
            user=user, type=SecurityEvent.Type.SIGNED_UP, context=context, notify=False
        )
    return user


# Sign-ins kept per account for its security page: this many completed, and this many refused.
SIGN_IN_HISTORY_KEPT = 20

FAILED_OUTCOMES = (
    SignIn.Outcome.WRONG_PASSWORD,
    SignIn.Outcome.WRONG_SECOND_FACTOR,
    SignIn.Outcome.WRONG_PASSWORD_REAUTHENTICATION,
)


def _sign_ins_prune(*, users: QuerySet[User], failed: bool) -> None:
    """Drop the account's completed (or refused) sign-ins beyond the newest kept, in one
    DELETE whether or not `users` finds an account."""
    kept_apart = Q(outcome__in=FAILED_OUTCOMES)
    stale = (
        SignIn.objects.filter(kept_apart if failed else ~kept_apart, user__in=users)
        .order_by("-created_at", "-id")
        .values("pk")[SIGN_IN_HISTORY_KEPT:]
    )
    SignIn.objects.filter(pk__in=Subquery(stale)).delete()


def sign_in_record(*, user: User, context: AuditContext) -> SignIn:
    """Remember a completed sign-in for the account's history, dropping the oldest."""
    with transaction.atomic():
        sign_in = SignIn.objects.create(
            user=user, ip_address=context.ip_address, user_agent=context.user_agent[:300]
        )
        _sign_ins_prune(users=User.objects.filter(pk=user.pk), failed=False)
    return sign_in


def _sign_in_refused_record(*, user: User, context: AuditContext, outcome: str) -> None:
    with transaction.atomic():
        SignIn.objects.create(
            user=user,
            ip_address=context.ip_address,
            user_agent=context.user_agent[:300],
            outcome=outcome,
        )
        _sign_ins_prune(users=User.objects.filter(pk=user.pk), failed=True)


def sign_in_wrong_code_record(*, user: User, context: AuditContext) -> None:
    """Remember a refused second factor after the right password (never the code typed)."""
    _sign_in_refused_record(user=user, context=context, outcome=SignIn.Outcome.WRONG_SECOND_FACTOR)


def reauthentication_wrong_password_record(*, user: User, context: AuditContext) -> None:
    """Remember a wrong password typed by a session signed in to `user` when asked to
    confirm it is them (never the password). No sign-in was tried, so it is not recorded
    as a failed one; it is kept with the refused sign-ins, bounded the same way."""
    _sign_in_refused_record(
        user=user, context=context, outcome=SignIn.Outcome.WRONG_PASSWORD_REAUTHENTICATION
    )


def sign_in_wrong_password_record(*, email: str, context: AuditContext) -> None:
    """Remember a refused password in the history of the account with this login email.

    The password is not taken. For an email with no account nothing is written, by the
    very same statements (an INSERT … SELECT that finds no row, a DELETE that finds
    none): the sign-in page must take the same time whether an account exists (SPEC §7).
    """
    users = User.objects.alias(email_lower=Lower("email")).filter(email_lower=email.lower())
    select_sql, params = users.values_list("id", flat=True).query.sql_with_params()
    # The SELECT is compiled by the ORM and every value is a bound parameter.
    insert = (
        f"INSERT INTO {SignIn._meta.db_table} "  # noqa: S608 # nosec B608
        "(user_id, created_at, ip_address, user_agent, outcome) "
        f"SELECT pk_source.id, %s, %s, %s, %s FROM ({select_sql}) AS pk_source"
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                insert,
                [
                    timezone.now(),
                    context.ip_address,
                    context.user_agent[:300],
                    SignIn.Outcome.WRONG_PASSWORD.value,
                    *params,
                ],
            )
        _sign_ins_prune(users=users, failed=True)
