from django.urls import path

from calendarsync import views, views_explain, views_log
from calendarsync.connect import exchange, google, microsoft

app_name = "calendarsync"
urlpatterns = [
    path("", views.page, name="page"),
    path("connect/other/", views.connect_other, name="connect_other"),
    path("connect/exchange/", exchange.connect_exchange, name="connect_exchange"),
    path("connect/google/", google.connect_google, name="connect_google"),
    path("connect/google/callback/", google.google_callback, name="google_callback"),
    path("connect/microsoft/", microsoft.connect_microsoft, name="connect_microsoft"),
    path("connect/microsoft/callback/", microsoft.microsoft_callback, name="microsoft_callback"),
    path("accounts/<int:pk>/options/<slug:option>/", views.update_preferences, name="update_preferences"),
    path("accounts/<int:pk>/status/", views.sync_status, name="sync_status"),
    path("accounts/<int:pk>/start/", views.start_sync, name="start_sync"),
    path("accounts/<int:pk>/stop/", views.stop_sync, name="stop_sync"),
    path("accounts/<int:pk>/reconnect/", views.reconnect, name="reconnect"),
    path("accounts/<int:pk>/sync-now/", views_log.sync_now, name="sync_now"),
    path("accounts/<int:pk>/log/", views_log.sync_log, name="sync_log"),
    path("activities/<int:pk>/why/", views_explain.activity_sync, name="activity_sync"),
]
