"""Create the staff groups of the support queue with their admin permissions."""

from django.db import migrations

AGENT_PERMISSIONS = [
    ("support", "view_recoverycase"),
    ("support", "view_caseevidence"),
]
SUPERVISOR_PERMISSIONS = AGENT_PERMISSIONS + [
    ("support", "view_caseevent"),
    ("support", "view_caseapproval"),
    ("support", "view_emailchange"),
    ("accounts", "view_securityevent"),
    ("accounts", "view_notification"),
]


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations ran; the groups need them now.
    for label in ("accounts", "support"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in (("Support agents", AGENT_PERMISSIONS),
                        ("Supervisors", SUPERVISOR_PERMISSIONS)):
        group, _created = Group.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["Support agents", "Supervisors"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0002_case_event_append_only"),
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
