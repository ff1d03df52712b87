"""Rows sent, failed or discarded before their content was removed on finishing lose it now."""

from django.db import migrations

# Every value of a finished row's context becomes "[removed]" (CONTEXT_REMOVED), the names
# stay: the rule the delivery statements apply as each row finishes.
FINISHED_ROWS_CONTENT_REMOVE = """
UPDATE notifications_notification
SET context = (
    SELECT COALESCE(jsonb_object_agg(key, '"[removed]"'::jsonb), '{}'::jsonb)
    FROM jsonb_each(context)
)
WHERE status IN ('sent', 'failed', 'discarded')
  AND EXISTS (SELECT 1 FROM jsonb_each(context) WHERE value <> '"[removed]"'::jsonb)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_due_delivery"),
    ]

    operations = [
        migrations.RunSQL(FINISHED_ROWS_CONTENT_REMOVE, reverse_sql=migrations.RunSQL.noop),
    ]
