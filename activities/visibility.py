"""The one place that decides which activities a user may see (A5) and which show as "Private" (A6).

Everything that lists activities (views, calendar, export, search, admin for
non-superusers) starts from :func:`visible_activities`. The checks are SQL
conditions, never Python loops over rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When

from activities.models import Activity, Deal, Organization, Person, Visibility

if TYPE_CHECKING:
    from accounts.models import User

PRIVATE_LABEL = "Private"


def _linked_item_visible(user: User, prefix: str = "") -> Q:
    """An item (deal, person, organization) is visible to everyone in its company, or to its owner."""
    return Q(**{f"{prefix}visibility": Visibility.EVERYONE}) | Q(**{f"{prefix}owner": user})


def linked_item_visible_to(item: Deal | Person | Organization, user_id: int) -> bool:
    """The Python twin of ``_linked_item_visible``: may this user view this deal, person or organization?"""
    return item.visibility == Visibility.EVERYONE or item.owner_id == user_id


def _link_visible(user: User, field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | _linked_item_visible(user, f"{field}__")


def attending_condition(user: User) -> Q:
    """M1: a meeting the user attends (another user's activity) is theirs to see, in full."""
    attending = Activity.attending_users.through.objects.filter(activity_id=OuterRef("pk"), user_id=user.pk)
    return Q(Exists(attending))


def mine_condition(user: User) -> Q:
    """The "me" of the owner filter: what the user owns, and the meetings they attend (M1)."""
    return Q(owner=user) | attending_condition(user)


def masked_condition(user: User) -> Q:
    """A6: private activities of other users show only as a time block (not to their attendees)."""
    return Q(visibility=Visibility.OWNER) & ~Q(owner=user) & ~attending_condition(user)


def visible_activities(user: User) -> QuerySet[Activity]:
    """Activities ``user`` may see, each annotated with ``masked`` (True = show as "Private")."""
    if not user.is_authenticated or user.company_id is None:
        return Activity.objects.none()
    return (
        Activity.objects.filter(company_id=user.company_id)
        .filter(
            (
                _link_visible(user, "deal")
                & _link_visible(user, "person")
                & _link_visible(user, "organization")
            )
            | attending_condition(user)
        )
        .annotate(
            masked=Case(
                When(masked_condition(user), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )


def visible_deals(user: User) -> QuerySet[Deal]:
    if user.company_id is None:
        return Deal.objects.none()
    return Deal.objects.filter(_linked_item_visible(user), company_id=user.company_id)


def visible_persons(user: User) -> QuerySet[Person]:
    if user.company_id is None:
        return Person.objects.none()
    return Person.objects.filter(_linked_item_visible(user), company_id=user.company_id)


def visible_organizations(user: User) -> QuerySet[Organization]:
    if user.company_id is None:
        return Organization.objects.none()
    return Organization.objects.filter(_linked_item_visible(user), company_id=user.company_id)


def search_condition(user: User, text: str) -> Q:
    """Free-text search that never matches hidden fields of a masked activity (A6)."""
    matches = Q(subject__icontains=text) | Q(location__icontains=text) | Q(note__icontains=text)
    return matches & ~masked_condition(user)


# Rows that keep a copy of an activity rather than the activity itself (the calendar sync's trash
# keeps its fields as JSON) follow the same rules; the caller names the columns (or aliases) that
# hold the copy's owner, visibility and link ids.


def copied_links_visible(user: User, *, deal: str, person: str, organization: str) -> Q:
    """A5 for a copy: each of its linked ids is empty, or an item ``user`` may view."""
    return (
        _id_visible(deal, visible_deals(user))
        & _id_visible(person, visible_persons(user))
        & _id_visible(organization, visible_organizations(user))
    )


def copy_masked_condition(user: User, *, visibility: str, owner: str) -> Q:
    """A6 for a copy: another user's private activity (a copy has no attendees left to see it)."""
    return Q(**{visibility: Visibility.OWNER}) & ~Q(**{owner: user})


def _id_visible(field: str, items: QuerySet[Deal] | QuerySet[Person] | QuerySet[Organization]) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__in": items.values("pk")})
