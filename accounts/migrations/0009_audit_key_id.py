"""The audit chain becomes keyed: each event records the key id of its HMAC.

Events written before this migration keep their plain SHA-256 hashes and get an empty key id
(the column's default, so the append-only trigger is never touched: adding a column with a
default rewrites no row through UPDATE). They cannot be re-hashed with the key without
disabling that trigger, so they stay legacy events and verify as before; the keyed protection
starts at the first event written after this migration. The chain head records the last
legacy position (`legacy_until`), and every later event must carry an HMAC. Writing a signed
checkpoint right after migrating anchors that boundary outside the database.
"""

from django.db import migrations, models
from django.db.models import Max


def legacy_boundary_set(apps, schema_editor) -> None:
    SecurityEvent = apps.get_model("accounts", "SecurityEvent")
    AuditChainHead = apps.get_model("accounts", "AuditChainHead")
    last_seq = SecurityEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    AuditChainHead.objects.filter(pk=1).update(legacy_until=last_seq)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0008_supervisors_view_accounts")]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="legacy_until",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="securityevent",
            name="key_id",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=8
            ),
        ),
        migrations.RunPython(legacy_boundary_set, migrations.RunPython.noop),
    ]
