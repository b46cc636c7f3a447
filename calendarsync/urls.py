from django.urls import path

from calendarsync import views

app_name = "calendarsync"
urlpatterns = [
    path("", views.page, name="page"),
]
