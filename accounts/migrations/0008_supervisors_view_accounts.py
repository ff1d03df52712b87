"""Supervisors see accounts in the admin (contacts masked, read-only) to lift a hold there."""

from django.db import migrations

PERMISSION = ("accounts", "view_user")


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations ran; the grant needs it now.
    app_config = apps.get_app_config("accounts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(
        content_type__app_label=PERMISSION[0], codename=PERMISSION[1]
    )
    for group in Group.objects.filter(name="Supervisors"):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label=PERMISSION[0], codename=PERMISSION[1]
    ).first()
    if permission is not None:
        for group in Group.objects.filter(name="Supervisors"):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_security_hold_lifted"),
        ("support", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
