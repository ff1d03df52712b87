"""Make the record of service API calls append-only (the trigger function comes from accounts)."""

from django.db import migrations

CREATE = """
CREATE TRIGGER api_servicecall_append_only
    BEFORE UPDATE OR DELETE ON api_servicecall
    FOR EACH ROW EXECUTE FUNCTION recovery_desk_reject_change();
"""
DROP = "DROP TRIGGER IF EXISTS api_servicecall_append_only ON api_servicecall;"


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("accounts", "0002_security_event_append_only"),
    ]
    operations = [migrations.RunSQL(CREATE, DROP)]
