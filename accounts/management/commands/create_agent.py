"""Create a support agent or supervisor with an authenticator, and print how to enrol it."""

from __future__ import annotations

import base64
from argparse import ArgumentParser

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from support.services.agents import ROLE_GROUPS, agent_create


class Command(BaseCommand):
    help = "Create a staff account for the support queue with a TOTP device and backup codes."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--role", choices=sorted(ROLE_GROUPS), default="agent")
        parser.add_argument("--password", help="Initial password (default: a random one).")

    def handle(self, *args, email: str, role: str, password: str | None, **options) -> None:
        try:
            created = agent_create(email=email, role=role, password=password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {role} {created.user.email}"))
        self.stdout.write(f"Password:         {created.password}")
        self.stdout.write(f"Authenticator key: {base64.b32encode(created.device.bin_key).decode()}")
        self.stdout.write(f"Provisioning URI: {created.device.config_url}")
        self.stdout.write("Backup codes (shown once):")
        for code in created.backup_codes:
            self.stdout.write(f"  {code}")
