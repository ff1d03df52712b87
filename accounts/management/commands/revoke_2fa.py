"""Revoke the 2FA of many customers at once, as a declared, resumable campaign."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.management.progress import progress_argument_add, progress_bar
from accounts.models import RevocationCampaign
from accounts.selectors import revocation_forecast
from accounts.services.revocation import (
    revocation_campaign_remaining,
    revocation_campaign_run,
    revocation_campaign_start,
    revocation_factors_parse,
    revocation_identifiers_unmatched,
    revocation_selection,
)


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Not a date: {value} (use YYYY-MM-DD)") from exc
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = (
        "Reset 2FA for all customers, a file of ids/emails, or those matching filters. "
        "Devices are removed, users must set 2FA up again, sessions end, one notice each."
    )

    def add_arguments(self, parser) -> None:
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--all", action="store_true", help="Every customer account.")
        who.add_argument("--users", metavar="FILE", help="File with one id or email per line.")
        who.add_argument(
            "--resume", metavar="CAMPAIGN", type=int, help="Finish a campaign that was interrupted."
        )
        parser.add_argument("--joined-before", metavar="DATE")
        parser.add_argument("--last-login-before", metavar="DATE")
        parser.add_argument("--reason", help="Why (required for a new campaign).")
        parser.add_argument(
            "--factors",
            metavar="LIST",
            help="Which second factors to remove, comma-separated from totp, backup, passkey "
            "(default: all). --factors totp,backup keeps passkeys.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count and show a sample.")
        parser.add_argument(
            "--confirm",
            type=int,
            metavar="N",
            help="Required above the threshold: the exact number of users.",
        )
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--json", action="store_true", help="Machine-readable summary.")
        progress_argument_add(parser)

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["resume"]:
            campaign = RevocationCampaign.objects.filter(pk=options["resume"]).first()
            if campaign is None:
                raise CommandError(f"No campaign {options['resume']}.")
        else:
            campaign = self._start(options)
            if campaign is None:
                return
        with progress_bar(
            self,
            total=revocation_campaign_remaining(campaign=campaign),
            description=f"Campaign {campaign.pk}",
            unit="users",
            hidden=options["no_progress"],
        ) as bar:
            revoked = revocation_campaign_run(
                campaign=campaign, batch_size=options["batch_size"], progress=bar.update
            )
        summary = {
            "campaign": campaign.pk,
            "total": campaign.total,
            "revoked_now": revoked,
            "remaining": revocation_campaign_remaining(campaign=campaign),
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Campaign {campaign.pk}: revoked {revoked} now, {campaign.total} in the "
                    f"campaign, {summary['remaining']} remaining."
                )
            )

    def _start(self, options) -> RevocationCampaign | None:
        identifiers = None
        if options["users"]:
            path = Path(options["users"])
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            identifiers = path.read_text(encoding="utf-8").splitlines()
        selection = {k: options[k] for k in ("all", "users", "joined_before", "last_login_before")}
        try:
            selection["factors"] = list(revocation_factors_parse(options["factors"]))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            users = revocation_selection(
                all_users=options["all"],
                identifiers=identifiers,
                joined_before=_date(options["joined_before"]) if options["joined_before"] else None,
                last_login_before=_date(options["last_login_before"])
                if options["last_login_before"]
                else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        unmatched = revocation_identifiers_unmatched(identifiers=identifiers) if identifiers else []
        if unmatched:
            self.stderr.write(f"{len(unmatched)} lines of {options['users']} match no customer:")
            for line in unmatched:
                self.stderr.write(f"  {line}")
        count = users.count()
        if options["dry_run"]:
            self._forecast_write(
                users,
                count=count,
                unmatched=unmatched,
                factors=tuple(selection["factors"]),
                as_json=options["json"],
            )
            return None
        if not (options["reason"] or "").strip():
            raise CommandError("--reason is required.")
        if count > settings.REVOKE_CONFIRM_THRESHOLD and options["confirm"] != count:
            raise CommandError(
                f"This would revoke 2FA for {count} users. Run again with --confirm {count}."
            )
        return revocation_campaign_start(
            reason=options["reason"], operator=getpass.getuser(), users=users, selection=selection
        )

    def _forecast_write(
        self,
        users,
        *,
        count: int,
        unmatched: list[str],
        factors: tuple[str, ...],
        as_json: bool,
    ) -> None:
        sample = list(users.order_by("pk").values_list("email", flat=True)[:10])
        forecast = revocation_forecast(users=users, factors=factors)
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "dry_run": True,
                        "count": count,
                        "sample": sample,
                        "unmatched": unmatched,
                        "forecast": forecast.as_dict(),
                    }
                )
            )
            return
        self.stdout.write(f"Dry run: {count} users would lose their 2FA. Sample:")
        for email in sample:
            self.stdout.write(f"  {email}")
        rate_from = (
            f"measured over {forecast.handling_rate_cases} cases of the last 7 days"
            if forecast.handling_rate_source == "queue"
            else f"from {forecast.handling_rate_source}: no agent closed a case in 7 days"
        )
        self.stdout.write(
            "Forecast:\n"
            f"  selected:                 {forecast.selected}\n"
            f"  with a phone on file:     {forecast.with_phone}\n"
            f"  with a verified email:    {forecast.with_verified_email}\n"
            f"  removes:                  {', '.join(forecast.factors)}\n"
            f"  with unused backup codes: {forecast.with_backup_codes} "
            f"({_kept_words(forecast.backup_codes_kept)})\n"
            f"  with a passkey:           {forecast.with_passkey} "
            f"({_kept_words(forecast.passkeys_kept)})\n"
            f"  can recover by themselves: {forecast.self_service} "
            f"({forecast.self_service_share:.1%})\n"
            f"  expected agent cases:     {forecast.agent_cases}\n"
            f"  agent-hours:              {forecast.agent_hours} at "
            f"{forecast.cases_per_agent_hour} cases per agent-hour ({rate_from})\n"
            f"  campaign texts over today's SMS budget: {forecast.texts_over_budget}"
        )


def _kept_words(kept: bool) -> str:
    if kept:
        return "kept by this revocation: they count toward self-service below"
    return "removed by this revocation: they do not count toward self-service below"
