"""Fill a development database with demo customers and staff; safe to run again."""

from __future__ import annotations

import base64
import hashlib

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from accounts.services.users import user_create
from support.models import OPEN_STATUSES, RecoveryCase
from support.services.cases import case_open

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for the demo, never used in production
CUSTOMER_COUNT = 50
REENROLMENT_COUNT = 5
FIRST_NAMES = ["anna", "ben", "clara", "david", "eva", "felix", "greta", "hans", "ida", "jonas"]
DOMAINS = ["gmail.com", "web.de", "outlook.com", "gmx.de", "yahoo.com"]


def demo_key(email: str) -> str:
    """A fixed authenticator key per demo account, so a rerun keeps enrolled phones working."""
    return hashlib.sha256(f"recovery-desk-demo:{email}".encode()).hexdigest()[:40]


class Command(BaseCommand):
    help = "Create demo customers (with authenticators), an agent and a supervisor."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )

    def handle(self, *args, force: bool, **options) -> None:
        if not (settings.DEBUG or force):
            raise CommandError("seed_demo runs only with DEBUG on (or --force).")
        with transaction.atomic():
            staff = [
                self._account("agent@example.com", staff_group="Support agents"),
                self._account("supervisor@example.com", staff_group="Supervisors"),
            ]
            customers = []
            for i in range(CUSTOMER_COUNT):
                name = FIRST_NAMES[i % len(FIRST_NAMES)]
                email = f"{name}.{i:02d}@{DOMAINS[i % len(DOMAINS)]}"
                customers.append(
                    self._account(
                        email, phone=f"+4915100000{i:03d}", language="de" if i % 3 == 0 else "en"
                    )
                )
            for user in customers[-REENROLMENT_COUNT:]:
                TOTPDevice.objects.filter(user=user).delete()
                User.objects.filter(pk=user.pk).update(reenrolment_required=True)
            cases = self._cases(customers)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {len(customers)} customers, {len(staff)} staff, "
                f"{cases} open recovery cases. "
                f"Password for every demo account: {DEMO_PASSWORD}"
            )
        )
        self.stdout.write(
            "Sign in at http://127.0.0.1:8000/accounts/login/ (customers) or "
            "/admin/ (staff) with a code from these authenticator keys:"
        )
        for user in [*staff, *customers[:5]]:
            key = base64.b32encode(bytes.fromhex(demo_key(user.email))).decode()
            self.stdout.write(f"  {user.email:<28} phone {user.phone or '-':<15} key {key}")
        flagged = ", ".join(u.email for u in customers[-REENROLMENT_COUNT:])
        self.stdout.write(f"Flagged for 2FA re-enrolment (no authenticator): {flagged}")

    def _cases(self, customers: list[User]) -> int:
        """A few open cases from customers who lost their email or authenticator."""
        for i, user in enumerate(customers[10:20]):
            if not RecoveryCase.objects.filter(matched_user=user).exists():
                case_open(
                    contact_email=f"new.address.{i}@example.net",
                    contact_phone=user.phone,
                    emails_tried=[user.email],
                    language=user.language,
                    description="I lost my phone with the authenticator app and cannot sign in.",
                )
        return RecoveryCase.objects.filter(status__in=OPEN_STATUSES).count()

    def _account(
        self,
        email: str,
        *,
        phone: str | None = None,
        language: str = "en",
        staff_group: str | None = None,
    ) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = user_create(
                email=email,
                password=DEMO_PASSWORD,
                phone=phone,
                language=language,
                is_staff=bool(staff_group),
            )
            two_factor_provision(
                user=user, context=AuditContext(), key=demo_key(email), notify=False
            )
        if staff_group:
            user.groups.add(Group.objects.get_or_create(name=staff_group)[0])
        return user
