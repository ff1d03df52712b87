"""Campaign targets become a work queue: a revoked target is deleted, not marked done."""

import django.db.models.deletion
from django.db import migrations, models


def delete_done_targets(apps, schema_editor):
    # Without done_at, a target left in the table reads as still to do.
    apps.get_model("accounts", "CampaignTarget").objects.filter(done_at__isnull=False).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_incident_tooling'),
    ]

    operations = [
        migrations.RunPython(delete_done_targets, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='campaigntarget',
            name='campaign_target_todo_idx',
        ),
        migrations.RemoveField(
            model_name='campaigntarget',
            name='done_at',
        ),
        migrations.AlterField(
            model_name='campaigntarget',
            name='campaign',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.revocationcampaign'),
        ),
    ]
