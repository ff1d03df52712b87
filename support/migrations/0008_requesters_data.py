"""Requesters own their proofs, files and email changes; approvals name what they approve.

Existing data keeps working: every email change belongs to the request row of its case
(the requester who opened it), a proven change keeps the time it was last updated as its
proof time, each change-email approval is bound to the change it was asked for, and files a
joined request uploaded (stored on the open case until now) move to that request.
"""

from django.db import migrations, models


def forwards(apps, schema_editor):
    EmailChange = apps.get_model("support", "EmailChange")
    CaseApproval = apps.get_model("support", "CaseApproval")
    CaseEvent = apps.get_model("support", "CaseEvent")
    CaseEvidence = apps.get_model("support", "CaseEvidence")
    RecoveryCase = apps.get_model("support", "RecoveryCase")

    EmailChange.objects.update(requester_id=models.F("case_id"))
    EmailChange.objects.exclude(status="proving").update(proven_at=models.F("updated_at"))

    # The change an approval was asked for is the newest change of its case at that time.
    for approval in CaseApproval.objects.filter(action="change_email", email_change__isnull=True):
        changes = EmailChange.objects.filter(case_id=approval.case_id).order_by("-created_at")
        change = changes.filter(created_at__lte=approval.created_at).first() or changes.first()
        if change is None:
            approval.delete()
            continue
        approval.email_change_id = change.pk
        approval.save(update_fields=["email_change"])

    # A joined request stored its files right after the "joined" entry of the open case.
    references = dict(RecoveryCase.objects.filter(merged_into__isnull=False).values_list("reference", "pk"))
    joined_cases = CaseEvent.objects.filter(type="joined").values_list("case_id", flat=True).distinct()
    for case_id in joined_cases:
        joiner = None
        for event in CaseEvent.objects.filter(case_id=case_id).order_by("id"):
            if event.type == "joined":
                joiner = references.get((event.details or {}).get("request"))
            elif event.type == "evidence_added" and joiner is not None:
                evidence_id = (event.details or {}).get("evidence_id")
                CaseEvidence.objects.filter(pk=evidence_id, case_id=case_id).update(case_id=joiner)
            else:
                joiner = None


class Migration(migrations.Migration):

    dependencies = [
        ("support", "0007_requesters_own_their_proofs_and_changes"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
    ]
