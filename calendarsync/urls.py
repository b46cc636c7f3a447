from django.urls import path

from calendarsync import views

app_name = "calendarsync"
urlpatterns = [
    path("", views.page, name="page"),
    path("connect/other/", views.connect_other, name="connect_other"),
    path("connect/google/", views.connect_google, name="connect_google"),
    path("connect/google/callback/", views.google_callback, name="google_callback"),
]
