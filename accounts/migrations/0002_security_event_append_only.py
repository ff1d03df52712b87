"""Make the security event table append-only with a trigger.

TRUNCATE stays possible for the table owner: test databases are emptied with it, and an
owner can drop the trigger anyway; the application's role is what the trigger constrains.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION recovery_desk_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_securityevent_append_only
    BEFORE UPDATE OR DELETE ON accounts_securityevent
    FOR EACH ROW EXECUTE FUNCTION recovery_desk_reject_change();
"""

DROP = """
DROP TRIGGER IF EXISTS accounts_securityevent_append_only ON accounts_securityevent;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunSQL(CREATE, DROP)]
