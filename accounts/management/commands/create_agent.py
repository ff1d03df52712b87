"""Create a support agent or supervisor with an authenticator, and print how to enrol it."""

from __future__ import annotations

import base64
import secrets

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from accounts.services.users import user_create

ROLE_GROUPS = {"agent": "Support agents", "supervisor": "Supervisors"}


class Command(BaseCommand):
    help = "Create a staff account for the support queue with a TOTP device and backup codes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("--role", choices=sorted(ROLE_GROUPS), default="agent")
        parser.add_argument("--password", help="Initial password (default: a random one).")

    def handle(self, *args, email: str, role: str, password: str | None, **options) -> None:
        if User.objects.filter(email=email.lower()).exists():
            raise CommandError(f"An account with the email {email} already exists.")
        password = password or secrets.token_urlsafe(16)
        try:
            user = user_create(email=email, password=password, is_staff=True)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        group, _created = Group.objects.get_or_create(name=ROLE_GROUPS[role])
        user.groups.add(group)
        device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
        self.stdout.write(self.style.SUCCESS(f"Created {role} {user.email}"))
        self.stdout.write(f"Password:         {password}")
        self.stdout.write(f"Authenticator key: {base64.b32encode(device.bin_key).decode()}")
        self.stdout.write(f"Provisioning URI: {device.config_url}")
        self.stdout.write("Backup codes (shown once):")
        for code in codes:
            self.stdout.write(f"  {code}")
