"""The searchable pickers of the activity form: what each one offers and how typed text is matched.

Every picker draws from a ``visible_*`` helper of :mod:`activities.visibility`, so the
autocomplete endpoint and the form's server-side matching offer only items the user may
see (A5): nothing of another company, nothing a colleague keeps to themself (A6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Model, Q, QuerySet

from activities.bounds import parse_ids
from activities.visibility import visible_deals, visible_organizations, visible_persons

if TYPE_CHECKING:
    from accounts.models import User

SUGGESTION_LIMIT = 10
QUERY_MAX_LENGTH = 100


@dataclass(frozen=True)
class PickerKind:
    """One picker of the form: its field (and POST name), the items it offers and how they are shown."""

    field: str
    noun: str
    noun_plural: str
    multiple: bool
    items: Callable[[User], QuerySet[Any]]
    label_field: str
    search_fields: tuple[str, ...]
    detail_field: str = ""

    @property
    def query_name(self) -> str:
        """The text input typed into (also what the autocomplete endpoint reads)."""
        return f"{self.field}_query"

    @property
    def pick_name(self) -> str:
        """Checkboxes offered after an ambiguous match, ticked to choose (works without JavaScript)."""
        return f"{self.field}_pick"


PICKERS: dict[str, PickerKind] = {
    "participants": PickerKind(
        field="participants",
        noun="person",
        noun_plural="persons",
        multiple=True,
        items=visible_persons,
        label_field="name",
        search_fields=("name", "email"),
        detail_field="email",
    ),
    "deal": PickerKind(
        field="deal",
        noun="deal",
        noun_plural="deals",
        multiple=False,
        items=visible_deals,
        label_field="title",
        search_fields=("title",),
    ),
    "person": PickerKind(
        field="person",
        noun="person",
        noun_plural="persons",
        multiple=False,
        items=visible_persons,
        label_field="name",
        search_fields=("name", "email"),
        detail_field="email",
    ),
    "organization": PickerKind(
        field="organization",
        noun="organization",
        noun_plural="organizations",
        multiple=False,
        items=visible_organizations,
        label_field="name",
        search_fields=("name",),
    ),
}


@dataclass(frozen=True)
class PickerItem:
    pk: int
    label: str
    detail: str = ""


def item_of(kind: PickerKind, obj: Model) -> PickerItem:
    detail = str(getattr(obj, kind.detail_field, "") or "") if kind.detail_field else ""
    return PickerItem(pk=int(obj.pk), label=str(getattr(obj, kind.label_field)), detail=detail)


def clean_query(text: str) -> str:
    return " ".join(text.split())[:QUERY_MAX_LENGTH]


def _matching(kind: PickerKind, user: User, text: str) -> QuerySet[Any]:
    items = kind.items(user).order_by(kind.label_field, "pk")
    if not text:
        return items
    condition = Q()
    for name in kind.search_fields:
        condition |= Q(**{f"{name}__icontains": text})
    return items.filter(condition)


def suggestions(
    kind: PickerKind, user: User, text: str, exclude: Iterable[object] = ()
) -> tuple[list[PickerItem], bool]:
    """Up to ``SUGGESTION_LIMIT`` items matching ``text`` (all when empty), and whether there are more."""
    rows = list(
        _matching(kind, user, clean_query(text)).exclude(pk__in=parse_ids(exclude))[: SUGGESTION_LIMIT + 1]
    )
    return [item_of(kind, row) for row in rows[:SUGGESTION_LIMIT]], len(rows) > SUGGESTION_LIMIT


@dataclass(frozen=True)
class Match:
    """What typed text resolved to: one item, or the candidates to choose from (none = no match)."""

    found: Model | None = None
    candidates: list[PickerItem] = field(default_factory=list)


def resolve(kind: PickerKind, user: User, text: str) -> Match:
    """Server-side matching of what was typed and not picked (the no-JavaScript path, or a quick typist).

    An exact (case-insensitive) label or e-mail wins; otherwise a single partial match does.
    """
    text = clean_query(text)
    exact = Q()
    for name in kind.search_fields:
        exact |= Q(**{f"{name}__iexact": text})
    exact_rows = list(kind.items(user).filter(exact)[:2])
    if len(exact_rows) == 1:
        return Match(found=exact_rows[0])
    rows = list(_matching(kind, user, text)[: SUGGESTION_LIMIT + 1])
    if len(rows) == 1:
        return Match(found=rows[0])
    return Match(candidates=[item_of(kind, row) for row in rows[:SUGGESTION_LIMIT]])


def items_by_pk(kind: PickerKind, user: User, pks: Iterable[object]) -> list[PickerItem]:
    """The visible items among ``pks`` (posted values, so possibly junk), in the order given."""
    wanted = parse_ids(pks)
    if not wanted:
        return []
    found = {row.pk: item_of(kind, row) for row in kind.items(user).filter(pk__in=wanted)}
    return [found[pk] for pk in wanted if pk in found]


@dataclass(frozen=True)
class PickerState:
    """What ``_picker.html`` shows: chosen items as chips, the typed text, candidates and errors."""

    kind: PickerKind
    label: str
    selected: list[PickerItem]
    query: str = ""
    candidates: list[PickerItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
