from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "calendarsync"
    verbose_name = "Calendar Sync"

    def ready(self) -> None:
        from calendarsync import signals  # noqa: F401  (R8 push triggers, R3 CRM deletions)
