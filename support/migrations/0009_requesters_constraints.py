"""Every email change names its requester; approvals of a change or a document name it.

Separate from the data step before it: PostgreSQL does not alter a table with foreign-key
checks of that transaction still pending.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("support", "0008_requesters_data"),
    ]

    operations = [
        migrations.AlterField(
            model_name="emailchange",
            name="requester",
            field=models.ForeignKey(
                help_text="The request (requester) who asked for this address and proves it.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="requested_email_changes",
                to="support.recoverycase",
            ),
        ),
        migrations.AddConstraint(
            model_name="caseapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("action", "change_email"), _negated=True),
                    ("email_change__isnull", False),
                    _connector="OR",
                ),
                name="email_change_approval_names_its_change",
            ),
        ),
        migrations.AddConstraint(
            model_name="caseapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("action", "document"), _negated=True),
                    ("proof__isnull", False),
                    _connector="OR",
                ),
                name="document_approval_names_its_proof",
            ),
        ),
    ]
