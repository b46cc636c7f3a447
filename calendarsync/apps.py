from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "calendarsync"
    verbose_name = "Calendar Sync"
