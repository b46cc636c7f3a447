"""Give the default activity types of existing companies their own colours (A2).

Only types still on the old shared default colour change: a colour an admin chose is kept.
"""

from django.db import migrations

OLD_DEFAULT = "#4f6bed"
COLOURS = {
    "call": "#0f9f8f",
    "meeting": "#4f6bed",
    "task": "#f97316",
    "deadline": "#e03e3e",
    "email": "#9333ea",
    "lunch": "#22a34a",
}


def colour_default_types(apps, schema_editor):
    ActivityType = apps.get_model("activities", "ActivityType")
    for icon, colour in COLOURS.items():
        ActivityType.objects.filter(is_default=True, icon=icon, color=OLD_DEFAULT).update(color=colour)


class Migration(migrations.Migration):
    dependencies = [("activities", "0002_activity_sync_fields")]

    operations = [migrations.RunPython(colour_default_types, migrations.RunPython.noop)]
