from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="activities:list", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.ico"), permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("preferences/", include("accounts.urls")),
    path("preferences/calendar-sync/", include("calendarsync.urls")),
    path("activities/", include("activities.urls")),
]
