"""Django admin for activities and their types: company scoping (A1), types (A2), privacy (A5, A6)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from accounts.models import Company, User
from activities.models import Activity, ActivityType, Deal, Organization, Person, Visibility
from tests.conftest import PASSWORD, make_activity, make_user

ADMIN_APPS = ("accounts", "activities", "calendarsync")

SECRET_SUBJECT = "Secret merger talk with Initech"
SECRET_NOTE = "Bring the term sheet"
SECRET_LOCATION = "Hotel Adlon, room 212"
# Django admin's "… doesn't exist. Perhaps it was deleted?" message, with its typographic apostrophe.
DOESNT_EXIST = "doesn\u2019t exist"


def grant_admin_permissions(user: User) -> User:
    """A company admin: staff, not superuser, with every model permission of our apps."""
    user.is_staff = True
    user.role = User.Role.ADMIN
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))
    return User.objects.get(pk=user.pk)  # fresh, without the permission cache


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def company_admin(company: Company) -> User:
    return grant_admin_permissions(make_user(company, "boss@acme.test", time_zone="Europe/Berlin"))


@pytest.fixture
def company_admin_client(company_admin: User) -> Client:
    return logged_in(company_admin)


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(email="root@calsync.test", password=PASSWORD)


@pytest.fixture
def superuser_client(superuser: User) -> Client:
    return logged_in(superuser)


@pytest.fixture
def private_activity(owner: User) -> Activity:
    return make_activity(
        owner,
        subject=SECRET_SUBJECT,
        note=SECRET_NOTE,
        location=SECRET_LOCATION,
        guests=["ceo@initech.test"],
        visibility=Visibility.OWNER,
    )


CHANGELIST = "admin:activities_activity_changelist"


def changelist_html(client: Client, **params: str) -> str:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return response.content.decode()


# --- A1: who sees what -------------------------------------------------------------------------


def test_a1_superuser_sees_activities_of_every_company(
    superuser_client: Client, owner: User, outsider: User
) -> None:
    make_activity(owner, subject="Acme kickoff")
    make_activity(outsider, subject="Globex kickoff")

    html = changelist_html(superuser_client)

    assert "Acme kickoff" in html
    assert "Globex kickoff" in html


def test_a1_superuser_sees_private_subjects(superuser_client: Client, private_activity: Activity) -> None:
    html = changelist_html(superuser_client)

    assert SECRET_SUBJECT in html


def test_a1_company_admin_sees_only_their_company(
    company_admin_client: Client, owner: User, outsider: User, company: Company, other_company: Company
) -> None:
    make_activity(owner, subject="Acme kickoff")
    make_activity(outsider, subject="Globex kickoff")
    Deal.objects.create(company=company, owner=owner, title="Acme renewal")
    Deal.objects.create(company=other_company, owner=outsider, title="Globex renewal")

    activities = changelist_html(company_admin_client)
    deals = company_admin_client.get(reverse("admin:activities_deal_changelist")).content.decode()
    users = company_admin_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    companies = company_admin_client.get(reverse("admin:accounts_company_changelist")).content.decode()

    assert "Acme kickoff" in activities
    assert "Globex kickoff" not in activities
    assert "Acme renewal" in deals
    assert "Globex renewal" not in deals
    assert owner.email in users
    assert outsider.email not in users
    assert "Acme Sales" in companies
    assert "Globex" not in companies


def test_a1_company_admin_cannot_open_another_companys_activity(
    company_admin_client: Client, outsider: User
) -> None:
    foreign = make_activity(outsider, subject="Globex kickoff")

    response = company_admin_client.get(
        reverse("admin:activities_activity_change", args=[foreign.pk]), follow=True
    )

    assert DOESNT_EXIST in response.content.decode()
    assert "Globex kickoff" not in response.content.decode()


def test_a1_company_admin_sees_only_their_companys_types(
    company_admin_client: Client, company: Company, other_company: Company
) -> None:
    ActivityType.objects.create(company=other_company, name="Globex golf")
    ActivityType.objects.create(company=company, name="Acme demo")

    html = company_admin_client.get(reverse("admin:activities_activitytype_changelist")).content.decode()

    assert "Acme demo" in html
    assert "Globex golf" not in html


def test_a1_foreign_key_choices_are_limited_to_the_company(
    company_admin_client: Client, owner: User, outsider: User
) -> None:
    response = company_admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "activities", "model_name": "activity", "field_name": "owner", "term": ""},
    )

    emails = {row["text"] for row in response.json()["results"]}
    assert owner.display_name in emails
    assert outsider.display_name not in emails


def test_a1_company_admin_cannot_file_an_activity_under_another_companys_type(
    company_admin_client: Client, company_admin: User, other_company: Company, company: Company
) -> None:
    foreign_type = ActivityType.objects.get(company=other_company, name="Call")
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    response = company_admin_client.post(
        reverse("admin:activities_activity_add"),
        {
            "company": company.pk,
            "owner": company_admin.pk,
            "type": foreign_type.pk,
            "subject": "Smuggled",
            "due_date": tomorrow.isoformat(),
            "visibility": Visibility.EVERYONE,
            "guests": "[]",
            "busy": "on",
        },
    )

    assert response.status_code == 200  # the form comes back with an error
    assert "Select a valid choice" in response.content.decode()
    assert not Activity.objects.filter(subject="Smuggled").exists()


def test_a5_activity_linked_to_a_deal_the_admin_cannot_see_is_not_listed(
    company_admin_client: Client, owner: User, company: Company
) -> None:
    private_deal = Deal.objects.create(
        company=company, owner=owner, title="Hush deal", visibility=Visibility.OWNER
    )
    make_activity(owner, subject="Hush call", deal=private_deal)

    html = changelist_html(company_admin_client)

    assert "Hush call" not in html


# --- A6: private activities of others -----------------------------------------------------------


def test_a6_colleague_changelist_shows_private_block_without_details(
    company_admin_client: Client, private_activity: Activity, company: Company, owner: User
) -> None:
    deal = Deal.objects.create(company=company, owner=owner, title="Initech expansion")
    private_activity.deal = deal
    private_activity.save()

    html = changelist_html(company_admin_client)

    assert "Private" in html
    assert SECRET_SUBJECT not in html
    assert SECRET_LOCATION not in html
    assert "Initech expansion" not in html


def test_a6_owner_sees_their_own_private_activity(owner: User, private_activity: Activity) -> None:
    owner_client = logged_in(grant_admin_permissions(owner))

    html = changelist_html(owner_client)

    assert SECRET_SUBJECT in html


@pytest.mark.parametrize("term", ["merger", "term sheet", "Adlon"])
def test_a6_search_never_matches_hidden_fields_of_a_private_activity(
    company_admin_client: Client, private_activity: Activity, owner: User, term: str
) -> None:
    make_activity(owner, subject="Public merger planning")

    response = company_admin_client.get(reverse(CHANGELIST), {"q": term})

    assert private_activity not in list(response.context["cl"].result_list)
    assert SECRET_SUBJECT not in response.content.decode()


def test_a6_search_still_finds_visible_activities(
    company_admin_client: Client, private_activity: Activity, owner: User
) -> None:
    public = make_activity(owner, subject="Public merger planning")

    response = company_admin_client.get(reverse(CHANGELIST), {"q": "merger"})

    assert list(response.context["cl"].result_list) == [public]


def test_a6_superuser_search_finds_private_activity(
    superuser_client: Client, private_activity: Activity
) -> None:
    response = superuser_client.get(reverse(CHANGELIST), {"q": "merger"})

    assert list(response.context["cl"].result_list) == [private_activity]


@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_a6_private_activity_pages_do_not_exist_for_a_colleague(
    company_admin_client: Client, private_activity: Activity, view: str
) -> None:
    response = company_admin_client.get(
        reverse(f"admin:activities_activity_{view}", args=[private_activity.pk]), follow=True
    )

    html = response.content.decode()
    assert DOESNT_EXIST in html
    assert SECRET_SUBJECT not in html


@pytest.mark.parametrize(
    "lookup", [{"subject__icontains": "merger"}, {"note__icontains": "term"}, {"deal__isnull": "False"}]
)
def test_a6_url_lookups_cannot_probe_hidden_fields(
    company_admin_client: Client, private_activity: Activity, lookup: dict[str, str]
) -> None:
    response = company_admin_client.get(reverse(CHANGELIST), lookup)

    assert response.status_code == 400  # DisallowedModelAdminLookup
    assert SECRET_SUBJECT not in response.content.decode()


def test_a6_delete_action_skips_private_activities_of_others(
    company_admin_client: Client, private_activity: Activity
) -> None:
    response = company_admin_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [private_activity.pk], "post": "yes"},
        follow=True,
    )

    assert Activity.objects.filter(pk=private_activity.pk).exists()
    assert SECRET_SUBJECT not in response.content.decode()


def test_a6_deleting_a_user_lists_blocking_activities_as_counts(
    company_admin_client: Client, private_activity: Activity, owner: User
) -> None:
    response = company_admin_client.get(reverse("admin:accounts_user_delete", args=[owner.pk]))

    html = response.content.decode()
    assert "1 Activity" in html
    assert SECRET_SUBJECT not in html


# --- Constant query count -----------------------------------------------------------------------


def _seed_rows(owner: User, colleague: User, company: Company, count: int) -> None:
    organization = Organization.objects.create(company=company, owner=owner, name="Initech")
    person = Person.objects.create(
        company=company, owner=owner, name="Peter Gibbons", organization=organization
    )
    deal = Deal.objects.create(company=company, owner=owner, title="TPS reports", person=person)
    types = list(ActivityType.objects.filter(company=company))
    start = timezone.now().replace(microsecond=0)
    Activity.objects.bulk_create(
        Activity(
            company=company,
            owner=owner if index % 2 else colleague,
            type=types[index % len(types)],
            subject=f"Activity {index}",
            start_at=start + dt.timedelta(hours=index),
            due_date=(start + dt.timedelta(hours=index)).date(),
            duration=dt.timedelta(minutes=30),
            deal=deal if index % 3 == 0 else None,
            person=person if index % 3 == 1 else None,
            organization=organization,
            visibility=Visibility.OWNER if index % 5 == 0 else Visibility.EVERYONE,
        )
        for index in range(count)
    )


def _changelist_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    return len(context.captured_queries)


def test_changelist_query_count_does_not_grow_with_rows(
    company_admin_client: Client, owner: User, colleague: User, company: Company
) -> None:
    _seed_rows(owner, colleague, company, 5)
    few = _changelist_queries(company_admin_client)
    _seed_rows(owner, colleague, company, 95)

    many = _changelist_queries(company_admin_client)

    assert many == few


def test_changelist_with_100_rows_stays_within_a_fixed_query_budget(
    company_admin_client: Client,
    owner: User,
    colleague: User,
    company: Company,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    _seed_rows(owner, colleague, company, 100)

    with django_assert_max_num_queries(10):
        response = company_admin_client.get(reverse(CHANGELIST))

    assert len(response.context["cl"].result_list) == 100


def test_superuser_changelist_with_100_rows_stays_within_a_fixed_query_budget(
    superuser_client: Client,
    owner: User,
    colleague: User,
    company: Company,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    _seed_rows(owner, colleague, company, 100)

    with django_assert_max_num_queries(10):
        response = superuser_client.get(reverse(CHANGELIST))

    assert len(response.context["cl"].result_list) == 100


# --- A2: activity types ---------------------------------------------------------------------------


TYPE_CHANGELIST = "admin:activities_activitytype_changelist"


def test_a2_admin_adds_a_custom_type(company_admin_client: Client, company: Company) -> None:
    response = company_admin_client.post(
        reverse("admin:activities_activitytype_add"),
        {
            "company": company.pk,
            "name": "Site visit",
            "icon": "other",
            "color": "#118833",
            "order": 10,
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert ActivityType.objects.filter(company=company, name="Site visit", is_default=False).exists()


def test_a2_deactivate_and_activate_actions(company_admin_client: Client, company: Company) -> None:
    lunch = ActivityType.objects.get(company=company, name="Lunch")

    company_admin_client.post(
        reverse(TYPE_CHANGELIST), {"action": "deactivate", "_selected_action": [lunch.pk]}
    )
    lunch.refresh_from_db()
    assert lunch.is_active is False

    company_admin_client.post(
        reverse(TYPE_CHANGELIST), {"action": "activate", "_selected_action": [lunch.pk]}
    )
    lunch.refresh_from_db()
    assert lunch.is_active is True


def test_a2_deactivated_type_stays_on_old_activities(
    company_admin_client: Client, owner: User, company: Company
) -> None:
    lunch = ActivityType.objects.get(company=company, name="Lunch")
    activity = make_activity(owner, type=lunch)

    company_admin_client.post(
        reverse(TYPE_CHANGELIST), {"action": "deactivate", "_selected_action": [lunch.pk]}
    )

    activity.refresh_from_db()
    assert activity.type_id == lunch.pk


def test_a2_deleting_a_type_in_use_is_refused_politely(
    company_admin_client: Client, private_activity: Activity
) -> None:
    meeting = private_activity.type

    response = company_admin_client.get(
        reverse("admin:activities_activitytype_delete", args=[meeting.pk]), follow=True
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Cannot delete “Meeting”" in html
    assert "Deactivate the type instead" in html
    assert SECRET_SUBJECT not in html
    assert ActivityType.objects.filter(pk=meeting.pk).exists()


def test_a2_deleting_a_type_in_use_by_post_is_refused_politely(
    company_admin_client: Client, private_activity: Activity
) -> None:
    meeting = private_activity.type

    response = company_admin_client.post(
        reverse("admin:activities_activitytype_delete", args=[meeting.pk]), {"post": "yes"}, follow=True
    )

    assert response.status_code == 200
    assert "Deactivate the type instead" in response.content.decode()
    assert ActivityType.objects.filter(pk=meeting.pk).exists()


def test_a2_delete_action_refuses_types_in_use(
    company_admin_client: Client, private_activity: Activity
) -> None:
    meeting = private_activity.type
    lunch = ActivityType.objects.get(company=meeting.company, name="Lunch")

    response = company_admin_client.post(
        reverse(TYPE_CHANGELIST),
        {"action": "delete_selected", "_selected_action": [meeting.pk, lunch.pk], "post": "yes"},
        follow=True,
    )

    assert response.status_code == 200
    assert "Deactivate the type instead" in response.content.decode()
    assert ActivityType.objects.filter(pk__in=[meeting.pk, lunch.pk]).count() == 2


def test_a2_unused_type_can_be_deleted(company_admin_client: Client, company: Company) -> None:
    custom = ActivityType.objects.create(company=company, name="Site visit")

    response = company_admin_client.post(
        reverse("admin:activities_activitytype_delete", args=[custom.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not ActivityType.objects.filter(pk=custom.pk).exists()


def test_a2_activity_form_offers_only_active_types(company_admin_client: Client, company: Company) -> None:
    ActivityType.objects.filter(company=company, name="Lunch").update(is_active=False)

    response = company_admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "activities", "model_name": "activity", "field_name": "type", "term": ""},
    )

    names = {row["text"] for row in response.json()["results"]}
    assert "Meeting" in names
    assert not any(re.match("Lunch", name) for name in names)


# --- Users ---------------------------------------------------------------------------------------


def test_a1_superuser_adds_a_user_with_email_and_password(superuser_client: Client, company: Company) -> None:
    response = superuser_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "New.Hire@Acme.test",
            "company": company.pk,
            "role": User.Role.REGULAR,
            "time_zone": "Europe/Paris",
            "usable_password": "true",
            "password1": "a-long-enough-pass-42",
            "password2": "a-long-enough-pass-42",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new.hire@acme.test")
    assert user.company == company
    assert user.check_password("a-long-enough-pass-42")


def test_a1_company_admin_cannot_grant_superuser(
    company_admin_client: Client, company_admin: User, colleague: User
) -> None:
    response = company_admin_client.get(reverse("admin:accounts_user_change", args=[colleague.pk]))

    form = response.context["adminform"].form
    assert "is_superuser" not in form.fields
    assert "user_permissions" not in form.fields


def test_a1_company_admin_cannot_edit_a_superuser(
    company_admin_client: Client, company: Company, superuser: User
) -> None:
    superuser.company = company
    superuser.save()

    response = company_admin_client.post(
        reverse("admin:accounts_user_change", args=[superuser.pk]), {"email": "mine@acme.test"}
    )

    assert response.status_code == 403
    superuser.refresh_from_db()
    assert superuser.email == "root@calsync.test"
