"""How a meeting shows its guests' answers, its attending colleagues and its video call (M2, M4)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from activities.models import Activity

RESPONSE_LABELS = {
    "accepted": "Accepted",
    "declined": "Declined",
    "tentative": "Maybe",
    "needsAction": "No answer yet",
}


@dataclass(frozen=True)
class GuestAnswer:
    email: str
    response: str  # "accepted", "declined", "tentative", "needsAction"; "" before the calendar said
    label: str


def guest_answers(activity: Activity) -> list[GuestAnswer]:
    """The guests, then everyone else the organizer's calendar lists (participants, attending
    colleagues), each with the answer the calendar holds; none shown before the calendar said."""
    responses = {str(k).lower(): str(v) for k, v in (activity.guest_responses or {}).items()}
    emails: list[str] = []
    for email in [*(activity.guests or []), *responses]:
        if str(email).lower() not in {e.lower() for e in emails}:
            emails.append(str(email))
    answers = []
    for email in emails:
        response = responses.get(email.lower(), "")
        answers.append(GuestAnswer(email, response, RESPONSE_LABELS.get(response, "") if response else ""))
    return answers


def join_link(activity: Activity) -> str:
    """The video call's join link, if it is a web address (never a ``javascript:`` one)."""
    url = activity.join_url or ""
    return url if urlsplit(url).scheme in ("https", "http") else ""
