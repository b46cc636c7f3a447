"""R11: per-field CRM change times, so a conflict goes to the later edit of that field."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0003_default_type_colours"),
    ]

    operations = [
        migrations.AddField(
            model_name="activity",
            name="sync_field_changed_at",
            field=models.JSONField(
                blank=True,
                default=dict,
                editable=False,
                help_text="When each synced field last changed in the CRM",
            ),
        ),
    ]
