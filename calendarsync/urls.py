from django.urls import path

from calendarsync import views

app_name = "calendarsync"
urlpatterns = [
    path("", views.page, name="page"),
    path("connect/other/", views.connect_other, name="connect_other"),
    path("connect/exchange/", views.connect_exchange, name="connect_exchange"),
    path("connect/google/", views.connect_google, name="connect_google"),
    path("connect/google/callback/", views.google_callback, name="google_callback"),
    path("accounts/<int:pk>/options/<slug:option>/", views.update_preferences, name="update_preferences"),
    path("accounts/<int:pk>/start/", views.start_sync, name="start_sync"),
    path("accounts/<int:pk>/stop/", views.stop_sync, name="stop_sync"),
]
