"""The pickers' autocomplete endpoint offers only what the user may see (A5, A6), to no one else (A1)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from activities.models import Person, Visibility
from tests.activities.conftest import make_deal, make_org, make_person
from tests.conftest import make_user


def options_url(field: str) -> str:
    return reverse("activities:picker_options", args=[field])


def offered(client: Client, field: str, text: str = "", **extra: Any) -> list[str]:
    """The labels of the options offered, in order."""
    response = client.get(options_url(field), {f"{field}_query": text, **extra})
    assert response.status_code == 200
    return re.findall(r'data-label="([^"]*)"', response.content.decode())


@pytest.fixture
def acme_items(owner: User, colleague: User) -> None:
    make_person(owner, "Pat Buyer")
    make_person(owner, "Patricia Private", visibility=Visibility.OWNER)
    make_person(colleague, "Patrick Colleague")
    make_deal(owner, "Initech renewal")
    make_deal(owner, "Initech secret renewal", visibility=Visibility.OWNER)
    make_org(owner, "Initech")
    make_org(owner, "Initrode", visibility=Visibility.OWNER)


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["participants", "deal", "person", "organization"])
def test_a1_anonymous_is_sent_to_login(client, field):
    response = client.get(options_url(field), {f"{field}_query": "a"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a3_endpoint_answers_get_only(owner_client):
    assert owner_client.post(options_url("participants"), {"participants_query": "pat"}).status_code == 405


def test_a3_unknown_picker_is_404(owner_client):
    assert owner_client.get(options_url("owner"), {"owner_query": "a"}).status_code == 404


@pytest.mark.usefixtures("acme_items")
def test_a3_owner_gets_matching_persons_as_listbox_options(owner_client):
    response = owner_client.get(options_url("participants"), {"participants_query": "pat"})
    html = response.content.decode()
    assert response["Cache-Control"] == "private, no-store"
    assert re.findall(r'data-label="([^"]*)"', html) == ["Pat Buyer", "Patricia Private", "Patrick Colleague"]
    assert html.count('role="option"') == 3
    assert 'id="participants-option-' in html
    assert 'aria-selected="false"' in html


@pytest.mark.usefixtures("acme_items")
def test_a6_colleague_is_never_offered_the_owners_private_items(colleague_client):
    assert offered(colleague_client, "participants", "pat") == ["Pat Buyer", "Patrick Colleague"]
    assert offered(colleague_client, "person", "Patricia Private") == []
    assert offered(colleague_client, "deal", "renewal") == ["Initech renewal"]
    assert offered(colleague_client, "deal", "secret") == []
    assert offered(colleague_client, "organization", "Init") == ["Initech"]
    # Not by an empty search either (the first page of everything).
    everything = offered(colleague_client, "participants") + offered(colleague_client, "organization")
    assert "Patricia Private" not in everything
    assert "Initrode" not in everything


@pytest.mark.usefixtures("acme_items")
def test_a1_outsider_from_another_company_gets_nothing(outsider_client, outsider):
    make_person(outsider, "Pat Globex")
    for field in ("participants", "person"):
        assert offered(outsider_client, field, "pat") == ["Pat Globex"]
        assert offered(outsider_client, field) == ["Pat Globex"]
    for field, text in (("deal", "renewal"), ("organization", "Init"), ("deal", ""), ("organization", "")):
        html = outsider_client.get(options_url(field), {f"{field}_query": text}).content.decode()
        assert "Initech" not in html
        assert "data-label" not in html


@pytest.mark.django_db
def test_a1_user_without_a_company_gets_nothing(client, company, owner):
    make_person(owner, "Pat Buyer")
    loner = make_user(None, "loner@nowhere.test")
    client.force_login(loner)
    assert offered(client, "participants", "pat") == []
    assert offered(client, "participants") == []


@pytest.mark.usefixtures("acme_items")
def test_a3_search_matches_e_mail_and_leaves_out_what_is_chosen(owner_client, owner):
    pat = make_person(owner, "Pat Two")
    pat.email = "two@initech.test"
    pat.save()
    assert offered(owner_client, "participants", "initech.test") == ["Pat Two"]
    buyer = Person.objects.get(name="Pat Buyer")
    assert offered(owner_client, "participants", "pat", participants=[buyer.pk, "junk"]) == [
        "Pat Two",
        "Patricia Private",
        "Patrick Colleague",
    ]


def test_a3_no_match_and_too_many_matches_say_so(owner_client, owner):
    html = owner_client.get(options_url("deal"), {"deal_query": "zeppelin"}).content.decode()
    assert "No deal matches “zeppelin”." in html
    assert 'aria-disabled="true"' in html
    for number in range(12):
        make_deal(owner, f"Deal {number:02}")
    html = owner_client.get(options_url("deal"), {"deal_query": "deal"}).content.decode()
    assert html.count("data-label=") == 10
    assert "More deals match: type more of the name." in html


def test_a3_query_text_is_escaped(owner_client):
    html = owner_client.get(options_url("deal"), {"deal_query": "<script>x</script>"}).content.decode()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.usefixtures("acme_items")
def test_a3_search_costs_the_same_few_queries_however_many_match(
    owner_client, owner, django_assert_num_queries
):
    with django_assert_num_queries(3):  # session, user, the search
        offered(owner_client, "participants", "pat")
    for number in range(20):
        make_person(owner, f"Pat {number}")
    with django_assert_num_queries(3):
        offered(owner_client, "participants", "pat")
