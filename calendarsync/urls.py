from django.urls import path

app_name = "calendarsync"
urlpatterns: list = []
