from allauth.account import views as allauth_views
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils.functional import lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import RedirectView

# allauth leaves the password or code these views take in error reports: the same views, marked
# sensitive (issue #13), ahead of allauth's own patterns for the same paths.
hide_secrets = sensitive_post_parameters("password", "password1", "password2", "code")
allauth_marked_sensitive = [
    path("reauthenticate/", hide_secrets(allauth_views.reauthenticate), name="account_reauthenticate"),
    re_path(
        r"^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
        hide_secrets(allauth_views.password_reset_from_key),
        name="account_reset_password_from_key",
    ),
    path(
        "login/code/confirm/",
        hide_secrets(allauth_views.confirm_login_code),
        name="account_confirm_login_code",
    ),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="activities:list", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.ico"), permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include(allauth_marked_sensitive)),
    path("accounts/", include("allauth.urls")),
    path("preferences/", include("accounts.urls")),
    path("preferences/calendar-sync/", include("calendarsync.urls")),
    path("activities/", include("activities.urls")),
]
