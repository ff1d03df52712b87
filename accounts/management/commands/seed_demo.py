"""Fill a development database with demo customers and staff; safe to run again."""

from __future__ import annotations

import base64
import hashlib
from argparse import ArgumentParser
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.management.progress import progress_argument_add, progress_bar
from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from accounts.services.users import user_create
from support.models import OPEN_STATUSES, RecoveryCase
from support.services.agents import agent_create
from support.services.cases import case_open, case_reopen_after_hint

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for the demo, never used in production
CUSTOMER_COUNT = 50
REENROLMENT_COUNT = 5
SHOWN_CUSTOMERS = 5
DEMO_CASE_TEXT = "I lost my phone with the authenticator app and cannot sign in."
FIRST_NAMES = ["anna", "ben", "clara", "david", "eva", "felix", "greta", "hans", "ida", "jonas"]
DOMAINS = ["gmail.com", "web.de", "outlook.com", "gmx.de", "yahoo.com"]


@dataclass(frozen=True)
class DemoAccount:
    """A demo account as first seeded. Its phone is the stable key that finds it again:
    the product itself may have changed its email since (support, the admin)."""

    email: str
    phone: str
    language: str = "en"
    staff_role: str | None = None


STAFF = [
    DemoAccount("agent@example.com", "+4915100000900", staff_role="agent"),
    DemoAccount("supervisor@example.com", "+4915100000901", staff_role="supervisor"),
]
CUSTOMERS = [
    DemoAccount(
        f"{FIRST_NAMES[i % len(FIRST_NAMES)]}.{i:02d}@{DOMAINS[i % len(DOMAINS)]}",
        f"+4915100000{i:03d}",
        language="de" if i % 3 == 0 else "en",
    )
    for i in range(CUSTOMER_COUNT)
]


def demo_key(email: str) -> str:
    """A fixed authenticator key per demo account, so a rerun keeps enrolled phones working."""
    return hashlib.sha256(f"recovery-desk-demo:{email}".encode()).hexdigest()[:40]


class Command(BaseCommand):
    help = "Create demo customers (with authenticators), an agent and a supervisor."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )
        progress_argument_add(parser)

    def handle(self, *args, force: bool, no_progress: bool, **options) -> None:
        if not (settings.DEBUG or force):
            raise CommandError("seed_demo runs only with DEBUG on (or --force).")
        # Messages queued while seeding go out when this transaction commits, so everything
        # they print comes before the summary below.
        with transaction.atomic():
            staff: list[User] = []
            customers: list[User] = []
            with progress_bar(
                self,
                total=len(STAFF) + len(CUSTOMERS),
                description="Demo accounts",
                unit="accounts",
                hidden=no_progress,
            ) as bar:
                for seeds, accounts in ((STAFF, staff), (CUSTOMERS, customers)):
                    for seed in seeds:
                        accounts.append(self._account(seed))
                        bar.update()
            demo_cases = self._cases(customers)
        # Triage (run as the transaction commits) leads these accounts to self-service first;
        # the demo customers answered "none of this works for me", so they wait for an agent.
        for case in demo_cases:
            case_reopen_after_hint(case=case)
        open_cases = RecoveryCase.objects.filter(status__in=OPEN_STATUSES).count()
        flagged = User.objects.filter(
            pk__in=[user.pk for user in customers], reenrolment_required=True
        ).order_by("pk")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {len(customers)} customers, {len(staff)} staff, "
                f"{open_cases} open recovery cases."
            )
        )
        self.stdout.write(
            "Flagged for 2FA re-enrolment (no authenticator): "
            + (", ".join(user.email for user in flagged) or "-")
        )
        self.stdout.write(
            f"Sign in at {settings.SITE_URL}/accounts/login/ (customers) or /admin/ (staff) "
            f"with the password {DEMO_PASSWORD} and a code from the authenticator key:"
        )
        for user in [*staff, *customers[:SHOWN_CUSTOMERS]]:
            self.stdout.write(f"  {user.email:<28} phone {user.phone or '-':<15} key {_key(user)}")

    def _cases(self, customers: list[User]) -> list[RecoveryCase]:
        """A few open cases from customers who lost their email or authenticator."""
        opened: list[RecoveryCase] = []
        for i, user in enumerate(customers[10:20]):
            if not RecoveryCase.objects.filter(matched_user=user).exists():
                opened.append(
                    case_open(
                        contact_email=f"new.address.{i}@example.net",
                        contact_phone=user.phone or "",
                        emails_tried=[user.email],
                        language=user.language,
                        description=DEMO_CASE_TEXT,
                    ).case
                )
        return opened

    def _account(self, seed: DemoAccount) -> User:
        """The demo account, found by its phone (or, if that changed, its first email), or
        created; an account that exists is left as the product has made it."""
        user = (
            User.objects.filter(phone=seed.phone).first()
            or User.objects.filter(email=seed.email).first()
        )
        if user is not None:
            return user
        context = AuditContext()
        if seed.staff_role:
            # Staff are made as `create_agent` makes them, with the demo's password and key.
            return agent_create(
                email=seed.email,
                role=seed.staff_role,
                password=DEMO_PASSWORD,
                phone=seed.phone,
                language=seed.language,
                authenticator_key=demo_key(seed.email),
                context=context,
            ).user
        user = user_create(
            email=seed.email,
            password=DEMO_PASSWORD,
            phone=seed.phone,
            language=seed.language,
            context=context,
        )
        two_factor_provision(user=user, context=context, key=demo_key(seed.email), notify=False)
        if seed in CUSTOMERS[-REENROLMENT_COUNT:]:
            TOTPDevice.objects.filter(user=user).delete()
            user.reenrolment_required = True
            user.save(update_fields=["reenrolment_required"])
        return user


def _key(user: User) -> str:
    """The base32 key of the account's authenticator as it is now (none after a revocation)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return "- (set up 2FA again at /recover/2fa/)"
    return base64.b32encode(device.bin_key).decode()
