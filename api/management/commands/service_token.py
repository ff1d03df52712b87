"""Issue, revoke and list the service tokens the exchange uses to call the service API."""

from __future__ import annotations

import json
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.models import Scope, ServiceToken
from api.selectors import service_token_list
from api.services import service_token_create, service_token_revoke


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


class Command(BaseCommand):
    help = "service_token create NAME [--scope S ...] | revoke NAME | list [--json]"

    def add_arguments(self, parser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True)
        create = verbs.add_parser("create", help="Issue a token; it is shown only this once.")
        create.add_argument("name", help="The calling system, e.g. exchange-withdrawals.")
        create.add_argument(
            "--scope",
            dest="scopes",
            action="append",
            choices=Scope.values,
            help=f"Repeat for several (default: {Scope.RESTRICTIONS_READ}).",
        )
        revoke = verbs.add_parser("revoke", help="Refuse the token from its next call on.")
        revoke.add_argument("name")
        listing = verbs.add_parser("list", help="Names, scopes and dates; never a token.")
        listing.add_argument("--json", action="store_true")

    def handle(self, *args, verb: str, **options) -> None:
        if verb == "create":
            self._create(
                name=options["name"], scopes=options["scopes"] or [Scope.RESTRICTIONS_READ]
            )
        elif verb == "revoke":
            self._revoke(name=options["name"])
        else:
            self._list(as_json=options["json"])

    def _create(self, *, name: str, scopes: list[str]) -> None:
        try:
            service_token, token = service_token_create(name=name, scopes=scopes)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Created service token {service_token.name} "
                f"(scopes: {', '.join(service_token.scopes)})."
            )
        )
        self.stdout.write(
            "The token is shown only now; put it in the calling system's secret store:\n"
        )
        self.stdout.write(f"    {token}\n")
        self.stdout.write(
            "Send it in the Authorization header of every call, for example:\n\n"
            '    curl -H "Authorization: Bearer $TOKEN" '
            f"{settings.SITE_URL}/api/v1/accounts/ACCOUNT_ID/restrictions\n\n"
            f"The API is described at {settings.SITE_URL}/api/v1/openapi.json"
        )

    def _revoke(self, *, name: str) -> None:
        try:
            service_token = service_token_revoke(name=name)
        except ServiceToken.DoesNotExist as exc:
            raise CommandError(f"No service token is called {name}.") from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Revoked service token {service_token.name}: its calls are refused from now on."
            )
        )

    def _list(self, *, as_json: bool) -> None:
        tokens = list(service_token_list())
        if as_json:
            rows = [
                {
                    "name": t.name,
                    "scopes": t.scopes,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in tokens
            ]
            self.stdout.write(json.dumps(rows))
            return
        if not tokens:
            self.stdout.write("No service tokens.")
            return
        header = f"{'name':<24} {'scopes':<20} {'created':<21} {'last used':<21} revoked"
        self.stdout.write(header)
        for t in tokens:
            self.stdout.write(
                f"{t.name:<24} {','.join(t.scopes):<20} {_when(t.created_at):<21} "
                f"{_when(t.last_used_at):<21} {_when(t.revoked_at)}"
            )
