"""The range of what a request may ask for: ids that fit the database, dates the product can handle.

Everything read from a request goes through these before it reaches the database or date
arithmetic, so junk or huge values are a validation error (or are ignored), never a 500:

- an id is ASCII digits within the 64-bit signed range of ``BigAutoField`` (``str.isdigit``
  accepts "²", and SQLite and PostgreSQL refuse a bigger number with ``OverflowError``);
- a date lies in years 1900 to 2999: every calendar provider handles those, and a day's local
  midnight, a week's end or the month after stay far from ``datetime``'s limits (years 1 and
  9999), in every time zone.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import IntegerField, Model

MAX_ID = 2**63 - 1
_ID = re.compile(r"[0-9]{1,19}")

MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)
DATE_RANGE_MESSAGE = "Pick a date between 1 January 1900 and 31 December 2999."


def parse_id(raw: object) -> int | None:
    """``raw`` (a posted string, an int or a model instance) as a database id, or None if it cannot be one."""
    if isinstance(raw, Model):
        raw = raw.pk
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _ID.fullmatch(raw):
        value = int(raw)
    else:
        return None
    return value if 0 < value <= MAX_ID else None


def parse_ids(raws: Any) -> list[int]:
    """The valid ids among ``raws``, each once, in the order given; junk is dropped."""
    ids: list[int] = []
    for raw in raws:
        value = parse_id(raw)
        if value is not None and value not in ids:
            ids.append(value)
    return ids


def in_date_range(day: dt.date) -> bool:
    return MIN_DATE <= day <= MAX_DATE


def clamp_date(day: dt.date) -> dt.date:
    return min(max(day, MIN_DATE), MAX_DATE)


def validate_date_range(day: dt.date | None) -> None:
    if day is not None and not in_date_range(day):
        raise ValidationError(DATE_RANGE_MESSAGE, code="date_out_of_range")


class BoundedDateField(forms.DateField):
    """A date field that refuses dates outside ``MIN_DATE``..``MAX_DATE`` with a plain message."""

    default_validators = [validate_date_range]


def _chooses_by_id(field: forms.ModelChoiceField[Any]) -> bool:
    """Whether the field's values are integer primary keys (a foreign key's form field names ``id``)."""
    if field.queryset is None:
        return False
    pk = field.queryset.model._meta.pk
    return isinstance(pk, IntegerField) and field.to_field_name in {None, "pk", pk.name, pk.attname}


class SafeModelChoiceField(forms.ModelChoiceField[Any]):
    """A ``ModelChoiceField`` that refuses a value that cannot be an id before the database sees it."""

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values or not _chooses_by_id(self):
            return super().to_python(value)
        if parse_id(value) is None:
            raise ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value}
            )
        return super().to_python(value)


class SafeModelMultipleChoiceField(forms.ModelMultipleChoiceField[Any]):
    """A ``ModelMultipleChoiceField`` whose ids are checked before its ``__in`` query (which would overflow)."""

    def clean(self, value: Any) -> Any:
        if isinstance(value, list | tuple) and _chooses_by_id(self):
            for pk in value:
                if parse_id(pk) is None:
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                    )
        return super().clean(value)
