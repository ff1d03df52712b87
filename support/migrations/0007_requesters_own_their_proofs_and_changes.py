"""Requesters own their email changes; approvals can name a document check or a change.

The columns only: the next migration fills them for existing rows, the one after makes them
required where they must be.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("support", "0006_case_event_one_case_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="caseapproval",
            name="email_change",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="approvals",
                to="support.emailchange",
            ),
        ),
        migrations.AddField(
            model_name="caseapproval",
            name="proof",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="approvals",
                to="support.caseproof",
            ),
        ),
        migrations.AddField(
            model_name="emailchange",
            name="proven_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="emailchange",
            name="requester",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="requested_email_changes",
                to="support.recoverycase",
            ),
        ),
        migrations.AlterField(
            model_name="caseapproval",
            name="action",
            field=models.CharField(
                choices=[
                    ("document", "Approve a document check"),
                    ("change_email", "Change the login email"),
                    ("reauthenticate", "Re-authenticate with one proof (former policy)"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="caseevidence",
            name="case",
            field=models.ForeignKey(
                help_text="The request (requester) that uploaded the file.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="evidence",
                to="support.recoverycase",
            ),
        ),
        migrations.AlterField(
            model_name="caseproof",
            name="case",
            field=models.ForeignKey(
                help_text="The request (requester) that gave this proof.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="proofs",
                to="support.recoverycase",
            ),
        ),
    ]
