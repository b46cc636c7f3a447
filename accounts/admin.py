"""Django admin for companies and users (A1), and the company scoping every CalSync admin shares.

Superusers see everything. Staff who are not superusers (a company's admins) see only their
own company's objects, and every foreign-key choice offered to them is limited the same way:
a ``CompanyScopedAdmin`` subclass names, in ``company_lookup``, the path from its model to
the company, and the choices for a foreign key come from the target model's own admin.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, TypeVar

from allauth.account.models import EmailAddress
from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import NestedObjects
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import models, router
from django.db.models import Count, QuerySet
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import HttpRequest
from django.utils.text import capfirst

from accounts.models import Company, User

_M = TypeVar("_M", bound=models.Model)


def admin_user(request: HttpRequest) -> User:
    """The signed-in user of an admin request (the admin site has already required staff)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def autocomplete_source(request: HttpRequest) -> tuple[str, str, str] | None:
    """``(app_label, model_name, field_name)`` when ``request`` is the admin autocomplete endpoint."""
    if request.resolver_match is None or request.resolver_match.url_name != "autocomplete":
        return None
    return (
        request.GET.get("app_label", ""),
        request.GET.get("model_name", ""),
        request.GET.get("field_name", ""),
    )


class BoundedChangeList(ChangeList):
    """A changelist whose date hierarchy at year 9999 is a refused filter, not a 500.

    Django adds a day, a month or a year to the date asked for (``?due_date__year=9999``), which
    overflows ``datetime``; the admin answers a refused filter with its "?e=1" page.
    """

    def get_filters(self, request: HttpRequest) -> Any:
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as error:  # ValueError: "year 10000 is out of range"
            raise IncorrectLookupParameters(error) from error


class CompanyScopedAdmin(admin.ModelAdmin[_M]):
    """A model admin that shows staff who are not superusers only their own company's rows."""

    #: The lookup from this admin's model to its company's primary key.
    company_lookup: ClassVar[str] = "company"

    def scope_to_company(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        user = admin_user(request)
        if user.is_superuser:
            return queryset
        if user.company_id is None:
            return queryset.none()
        return queryset.filter(**{self.company_lookup: user.company_id})

    def get_queryset(self, request: HttpRequest) -> QuerySet[_M]:
        return self.scope_to_company(request, super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return BoundedChangeList

    def choices_for(self, request: HttpRequest, related_model: type[models.Model]) -> QuerySet[Any] | None:
        """Foreign-key choices for a non-superuser: what the target's own admin would show them."""
        related_admin = (
            self.admin_site.get_model_admin(related_model)
            if self.admin_site.is_registered(related_model)
            else None
        )
        if not isinstance(related_admin, CompanyScopedAdmin):
            return None
        queryset = related_admin.scope_to_company(request, related_model._default_manager.all())
        ordering = related_admin.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        user = admin_user(request)
        own_company_field = False
        if not user.is_superuser and "queryset" not in kwargs and db_field.related_model is not None:
            related_model = db_field.related_model
            queryset = self.choices_for(request, related_model) if isinstance(related_model, type) else None
            if queryset is not None:
                kwargs["queryset"] = queryset
            if related_model is Company:
                # A company admin only ever files things under their own company.
                kwargs.setdefault("initial", user.company_id)
                own_company_field = True
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and own_company_field:
            field.required = True
        return field

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField[Any] | None:
        user = admin_user(request)
        if not user.is_superuser and "queryset" not in kwargs and db_field.related_model is not None:
            related_model = db_field.related_model
            queryset = self.choices_for(request, related_model) if isinstance(related_model, type) else None
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Company filters only help superusers; everyone else has a single company."""
        list_filter = super().get_list_filter(request)
        if admin_user(request).is_superuser:
            return list_filter
        company_paths = {"company", self.company_lookup}
        return [
            item
            for item in list_filter
            if not (item in company_paths or (isinstance(item, tuple | list) and item[0] in company_paths))
        ]

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[Any], list[Any]]:
        """Summarise what blocks a deletion as counts for non-superusers.

        Django lists every protected object by name; for a user or an activity type those are
        activities, and a private one's subject must not show to anyone but its owner (A6).
        """
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected and not admin_user(request).is_superuser:
            collector = NestedObjects(using=router.db_for_write(self.model))
            collector.collect(list(objs))
            counts = Counter(type(obj)._meta for obj in collector.protected)
            protected = [
                f"{count} {capfirst(opts.verbose_name if count == 1 else opts.verbose_name_plural)}"
                for opts, count in sorted(counts.items(), key=lambda item: str(item[0].verbose_name))
            ]
        return deleted, model_count, perms_needed, protected


# --- Companies -------------------------------------------------------------------------------


@admin.register(Company)
class CompanyAdmin(CompanyScopedAdmin[Company]):
    company_lookup = "pk"
    list_display = ("name", "user_count", "created_at")
    search_fields = ("name",)
    ordering = ("name",)
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Company]:
        return super().get_queryset(request).annotate(user_count=Count("users", distinct=True))

    @admin.display(description="Users", ordering="user_count")
    def user_count(self, obj: Company) -> int:
        return int(getattr(obj, "user_count", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return admin_user(request).is_superuser and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Company | None = None) -> bool:
        return admin_user(request).is_superuser and super().has_delete_permission(request, obj)


# --- Users -----------------------------------------------------------------------------------


class EmailUserCreationForm(AdminUserCreationForm):
    """The admin's "add user" form for e-mail login: there is no username."""

    class Meta:
        model = User
        fields = ("email", "first_name", "last_name", "company", "role", "time_zone")

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with that e-mail address already exists.")
        return email


class EmailUserChangeForm(UserChangeForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A user with that e-mail address already exists.")
        return email


# Fields through which a user could gain more rights than their company admin role gives.
PRIVILEGE_FIELDS = ("is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(CompanyScopedAdmin[User], DjangoUserAdmin[User]):
    form = EmailUserChangeForm
    add_form = EmailUserCreationForm

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[Any], list[Any]]:
        """A user's own e-mail address records (allauth's) go with the user: the permission to
        delete the user is enough for them."""
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed = {name for name in perms_needed if name != EmailAddress._meta.verbose_name}
        return deleted, model_count, perms_needed, protected

    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "time_zone")}),
        ("Company", {"fields": ("company", "role")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "email",
                    "first_name",
                    "last_name",
                    "company",
                    "role",
                    "time_zone",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )
    list_display = (
        "email",
        "first_name",
        "last_name",
        "company",
        "role",
        "time_zone",
        "is_staff",
        "is_active",
    )
    list_filter = (
        ("company", admin.RelatedOnlyFieldListFilter),
        "role",
        "is_staff",
        "is_superuser",
        "is_active",
    )
    list_select_related = ("company",)
    search_fields = ("email", "first_name", "last_name", "company__name")
    ordering = ("email",)
    autocomplete_fields = ("company",)
    readonly_fields = ("last_login", "date_joined")

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if admin_user(request).is_superuser:
            return readonly
        return readonly + PRIVILEGE_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # A company admin must not be able to take over a superuser (password, e-mail).
        if obj is not None and obj.is_superuser and not admin_user(request).is_superuser:
            return False
        return bool(super().has_change_permission(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not admin_user(request).is_superuser:
            return False
        return bool(super().has_delete_permission(request, obj))
