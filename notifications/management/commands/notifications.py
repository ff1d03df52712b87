"""Operate the outbox: the burst guard's holds, and retracting a batch sent in error."""

from __future__ import annotations

import getpass
import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import RevocationCampaign
from notifications.retraction import (
    notifications_retract,
    retraction_batch_select,
    retraction_plan,
)
from notifications.selectors import notification_held_types, notification_status_summary
from notifications.services import (
    held_notifications_discard,
    held_notifications_release,
)


def _moment(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(
            f"Not a date or time: {value} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)"
        ) from exc
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = (
        "notifications status | release --type T | discard --type T | "
        "retract (--type T --since A --until B | --campaign N) [--dry-run] [--confirm N]"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("verb", choices=["status", "release", "discard", "retract"])
        parser.add_argument(
            "--type", dest="template_key", help="Notice type, e.g. security/two_factor_enabled"
        )
        parser.add_argument("--since", help="retract: start of the window (UTC unless given).")
        parser.add_argument("--until", help="retract: end of the window, exclusive.")
        parser.add_argument("--campaign", type=int, help="retract: every notice of a campaign.")
        parser.add_argument("--dry-run", action="store_true", help="retract: count only.")
        parser.add_argument(
            "--confirm",
            type=int,
            metavar="N",
            help="retract: the exact number of messages to retract.",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, verb: str, template_key: str | None, **options) -> None:
        if verb == "status":
            self._status(as_json=options["json"])
            return
        if verb == "retract":
            self._retract(template_key=template_key, options=options)
            return
        if not template_key:
            raise CommandError(f"{verb} needs --type")
        valid = notification_held_types()
        if template_key not in valid:
            raise CommandError(
                f"Unknown notice type {template_key!r}. Valid types:\n  " + "\n  ".join(valid)
            )
        if verb == "release":
            count = held_notifications_release(template_key=template_key)
            self.stdout.write(self.style.SUCCESS(f"Released {count} {template_key} notices."))
        else:
            count = held_notifications_discard(template_key=template_key)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Discarded {count} {template_key} notices (kept as records, not sent)."
                )
            )

    def _status(self, *, as_json: bool) -> None:
        summary = notification_status_summary()
        if as_json:
            self.stdout.write(json.dumps(summary, default=str))
            return
        for hold in summary["holds"]:
            self.stdout.write(
                self.style.ERROR(
                    f"HELD {hold['template_key']}: {hold['held']} waiting since "
                    f"{hold['held_at']:%Y-%m-%d %H:%M} UTC"
                )
            )
        if not summary["holds"]:
            self.stdout.write("No notice type is held.")
        for template_key, count in summary["suspect"].items():
            self.stdout.write(
                self.style.ERROR(
                    f"SUSPECT {template_key}: {count} held, the account does not show the "
                    "change the event reports"
                )
            )
        if summary["texts_over_budget"]:
            self.stdout.write(
                f"OVER BUDGET: {summary['texts_over_budget']} campaign texts wait beyond the "
                "daily SMS budget (release --type accounts/campaign_revocation)"
            )
        for status, count in sorted(summary["by_status"].items()):
            self.stdout.write(f"{status:>10}: {count}")

    def _retract(self, *, template_key: str | None, options) -> None:
        by_type = template_key or options["since"] or options["until"]
        if options["campaign"] is not None and by_type:
            raise CommandError("Retract a campaign, or a type in a time window, not both.")
        selection: dict = {"campaign": options["campaign"]}
        try:
            if options["campaign"] is not None:
                if not RevocationCampaign.objects.filter(pk=options["campaign"]).exists():
                    raise CommandError(f"No campaign {options['campaign']}.")
                batch = retraction_batch_select(campaign_id=options["campaign"])
            else:
                if not (template_key and options["since"] and options["until"]):
                    raise CommandError(
                        "retract needs --campaign N, or --type T with --since and --until."
                    )
                since, until = _moment(options["since"]), _moment(options["until"])
                selection = {
                    "type": template_key,
                    "since": since.isoformat(),
                    "until": until.isoformat(),
                }
                batch = retraction_batch_select(template_key=template_key, since=since, until=until)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if (
            template_key
            and template_key not in notification_held_types()
            and not batch.model.objects.filter(template_key=template_key).exists()
        ):
            raise CommandError(
                f"Unknown notice type {template_key!r}. Notice types that can be held:\n  "
                + "\n  ".join(notification_held_types())
            )
        plan = retraction_plan(batch=batch)
        if not options["dry_run"] and not (plan.to_retract or plan.unsent):
            self.stdout.write("Nothing to retract: no message of this batch is left to retract.")
            return
        if options["dry_run"]:
            if options["json"]:
                self.stdout.write(json.dumps({"dry_run": True, **plan.as_dict()}))
            else:
                self.stdout.write(
                    f"Dry run: {plan.to_retract} messages would get a 'sent in error' message; "
                    f"{plan.already_retracted} already have one; {plan.unsent} not yet sent "
                    "would be discarded."
                )
            return
        if options["confirm"] != plan.to_retract:
            raise CommandError(
                f"This would send {plan.to_retract} 'sent in error' messages. "
                f"Run again with --confirm {plan.to_retract}."
            )
        result = notifications_retract(batch=batch, selection=selection, operator=getpass.getuser())
        summary = {"retracted": result.retracted, "discarded": result.discarded}
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Retracted {result.retracted} messages; discarded {result.discarded} "
                    "not yet sent."
                )
            )
