from __future__ import annotations

from django.urls import URLPattern, path

from activities.views import calendar, editing, listing
from activities.views import pickers as picker_views

app_name = "activities"
urlpatterns: list[URLPattern] = [
    path("", listing.activity_list, name="list"),
    path("export.csv", listing.export_csv, name="export"),
    path("calendar/", calendar.activity_calendar, name="calendar"),
    path("new/", editing.activity_create, name="create"),
    path("<int:pk>/", editing.activity_detail, name="detail"),
    path("<int:pk>/edit/", editing.activity_edit, name="edit"),
    path("<int:pk>/delete/", editing.activity_delete, name="delete"),
    path("<int:pk>/done/", editing.activity_toggle_done, name="toggle_done"),
    path("pickers/<str:field>/", picker_views.picker_options, name="picker_options"),
]
