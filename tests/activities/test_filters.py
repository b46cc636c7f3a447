"""The shared filter form (A7) on its own: defaults, bad values, dict input."""

from __future__ import annotations

import datetime as dt

from django import forms

from activities.filters import (
    ActivityFilterForm,
    ActivityFilters,
    OwnerChoice,
    SortChoice,
    StatusChoice,
    TimeChoice,
)
from activities.models import ActivityType
from tests.conftest import make_user


def test_a7_defaults_are_me_to_do_any_time_ascending(owner):
    assert ActivityFilterForm(owner, {}).filters() == ActivityFilters(
        owner=OwnerChoice.ME, status=StatusChoice.TODO, time=TimeChoice.ALL, sort=SortChoice.ASC
    )


def test_a7_filters_from_a_plain_dict(owner, colleague):
    call = ActivityType.objects.get(company=owner.company, name="Call")
    filters = ActivityFilterForm(
        owner,
        {
            "owner": colleague.pk,
            "types": [call.pk],
            "status": "all",
            "time": "range",
            "from": "2025-01-01",
            "to": "2025-01-31",
            "q": "  renewal ",
            "sort": "desc",
        },
    ).filters()
    assert filters == ActivityFilters(
        owner=colleague.pk,
        type_ids=(call.pk,),
        status=StatusChoice.ALL,
        time=TimeChoice.RANGE,
        date_from=dt.date(2025, 1, 1),
        date_to=dt.date(2025, 1, 31),
        q="renewal",
        sort=SortChoice.DESC,
    )


def test_a7_each_bad_value_falls_back_to_its_default(owner):
    form = ActivityFilterForm(
        owner,
        {"owner": "nobody", "types": ["x"], "status": "maybe", "time": "later", "from": "soon", "sort": "up"},
    )
    assert form.filters() == ActivityFilters()
    assert set(form.errors) == {"owner", "types", "status", "time", "from", "sort"}


def test_a7_owner_filter_lists_deactivated_teammates(owner):
    former = make_user(owner.company, "former@acme.test", is_active=False)
    field = ActivityFilterForm(owner, {}).fields["owner"]
    assert isinstance(field, forms.ChoiceField)
    choices = {str(value): label for value, label in field.choices}  # type: ignore[union-attr,misc]
    assert choices[str(former.pk)] == "Former (inactive)"
