"""Make the case timeline append-only (the trigger function comes from accounts)."""

from django.db import migrations

CREATE = """
CREATE TRIGGER support_caseevent_append_only
    BEFORE UPDATE OR DELETE ON support_caseevent
    FOR EACH ROW EXECUTE FUNCTION recovery_desk_reject_change();
"""
DROP = "DROP TRIGGER IF EXISTS support_caseevent_append_only ON support_caseevent;"


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0001_initial"),
        ("accounts", "0002_security_event_append_only"),
    ]
    operations = [migrations.RunSQL(CREATE, DROP)]
