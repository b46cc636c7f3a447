"""A demo company to click through: an admin, two salespeople, CRM items and six weeks of activities.

Idempotent: the company is found by its name and the users by their e-mail addresses; organizations,
persons and deals by their name or title; a salesperson who already owns activities gets no new
ones. Re-running keeps existing data and creates nothing twice. The data is pseudo-random with a
fixed seed, so every run plans the same demo.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import Company, User
from activities.models import Activity, ActivityType, Deal, Organization, Person, Visibility

COMPANY_NAME = "Demo Company"
DEMO_PASSWORD = "demo-password-1"  # noqa: S105 - a published demo login, not a secret
SEED = 42
ACTIVITIES_PER_SALESPERSON = 50
WEEKS_AHEAD = 6


@dataclass(frozen=True)
class DemoUser:
    email: str
    first_name: str
    last_name: str
    time_zone: str
    admin: bool = False


ADMIN = DemoUser("admin@demo.calsync.test", "Ada", "Admin", "Europe/London", admin=True)
SALESPEOPLE = (
    DemoUser("alice@demo.calsync.test", "Alice", "Berger", "Europe/Berlin"),
    DemoUser("bob@demo.calsync.test", "Bob", "Miller", "America/New_York"),
)

# name, address, contacts (name, e-mail, phone)
ORGANIZATIONS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Initech",
        "4120 Freidrich Ln, Austin, TX",
        (
            ("Peter Gibbons", "peter@initech.example", "+1 512 555 0101"),
            ("Bill Lumbergh", "bill@initech.example", "+1 512 555 0102"),
        ),
    ),
    (
        "Globex Corporation",
        "1 Globex Way, Cypress Creek",
        (
            ("Hank Scorpio", "hank@globex.example", "+1 555 0103"),
            ("Frank Grimes", "frank@globex.example", "+1 555 0104"),
        ),
    ),
    (
        "Umbrella Logistics",
        "Hafenstraße 12, Hamburg",
        (
            ("Jana Albrecht", "jana.albrecht@umbrella-logistics.example", "+49 40 5550 105"),
            ("Tobias Krüger", "tobias.krueger@umbrella-logistics.example", "+49 40 5550 106"),
        ),
    ),
    (
        "Stark Renewables",
        "Marienplatz 8, München",
        (
            ("Miriam Hoffmann", "miriam@stark-renewables.example", "+49 89 5550 107"),
            ("Lukas Weber", "lukas@stark-renewables.example", "+49 89 5550 108"),
        ),
    ),
    (
        "Wayne Hospitality",
        "1007 Mountain Drive, Boston, MA",
        (
            ("Lucia Fox", "lucia@wayne-hospitality.example", "+1 617 555 0109"),
            ("Alfred Pennington", "alfred@wayne-hospitality.example", "+1 617 555 0110"),
        ),
    ),
    (
        "Nordlicht Software",
        "Kungsgatan 44, Stockholm",
        (
            ("Sofia Lindqvist", "sofia@nordlicht.example", "+46 8 555 0111"),
            ("Erik Holm", "erik@nordlicht.example", "+46 8 555 0112"),
        ),
    ),
)

# title, organization, value, currency, owner index (0 = Alice, 1 = Bob), visible only to the owner
DEALS: tuple[tuple[str, str, int, str, int, bool], ...] = (
    ("Initech TPS platform licence", "Initech", 48_000, "USD", 1, False),
    ("Initech support renewal", "Initech", 12_500, "USD", 1, False),
    ("Globex fleet rollout", "Globex Corporation", 120_000, "USD", 1, True),
    ("Umbrella warehouse pilot", "Umbrella Logistics", 35_000, "EUR", 0, False),
    ("Umbrella multi-site expansion", "Umbrella Logistics", 210_000, "EUR", 0, True),
    ("Stark solar monitoring", "Stark Renewables", 64_000, "EUR", 0, False),
    ("Wayne hotels booking suite", "Wayne Hospitality", 88_000, "USD", 1, False),
    ("Nordlicht partner agreement", "Nordlicht Software", 27_000, "EUR", 0, False),
)

# Subjects per activity type; {person}, {org} and {deal} are filled in from the linked items.
SUBJECTS: dict[str, tuple[str, ...]] = {
    "Call": (
        "Intro call with {person}",
        "Discovery call: {org}",
        "Follow-up call on {deal}",
        "Pricing questions from {person}",
        "Check in with {person} after the demo",
        "Reference call for {org}",
    ),
    "Meeting": (
        "Product demo for {org}",
        "Kick-off meeting: {deal}",
        "Quarterly business review with {org}",
        "Contract negotiation: {deal}",
        "Technical deep dive with {org}",
        "Onsite workshop at {org}",
    ),
    "Task": (
        "Prepare proposal for {deal}",
        "Update the forecast for {deal}",
        "Send case studies to {person}",
        "Draft the statement of work for {org}",
        "Research {org} before the next call",
    ),
    "Deadline": (
        "Proposal due: {deal}",
        "Contract signature deadline: {deal}",
        "Budget approval at {org}",
        "Pilot ends: {deal}",
    ),
    "Email": (
        "Email pricing sheet to {person}",
        "Send meeting notes to {org}",
        "Reply to {person} about security review",
        "Email renewal reminder to {org}",
    ),
    "Lunch": (
        "Lunch with {person}",
        "Team lunch with {org}",
    ),
}
PRIVATE_SUBJECTS = ("Dentist appointment", "Performance review", "Pick up the kids", "Interview candidate")
TYPE_WEIGHTS = {"Call": 30, "Meeting": 25, "Task": 15, "Deadline": 8, "Email": 14, "Lunch": 8}
LOCATIONS = (
    "Zoom",
    "Microsoft Teams",
    "Google Meet",
    "Customer office",
    "Our office, room 2.14",
    "Café Central",
)


@dataclass
class Summary:
    created: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, created: bool, count: int = 1) -> None:
        target = self.created if created else self.kept
        target[kind] = target.get(kind, 0) + count


PRODUCTION_REFUSAL = (
    f"seed_demo creates a superuser ({ADMIN.email}) with a published password, so it does not run "
    "with DEBUG off. Pass --allow-without-debug to seed this database anyway."
)


class Command(BaseCommand):
    help = "Create (or complete) the demo company, its users and six weeks of activities. Safe to re-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Seed even with DEBUG off (the demo logins, a superuser among them, share a published password).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["allow_without_debug"]:
            raise CommandError(PRODUCTION_REFUSAL)
        summary = Summary()
        rng = random.Random(SEED)  # noqa: S311 - reproducible demo data, not cryptography
        with transaction.atomic():
            company, created = Company.objects.get_or_create(name=COMPANY_NAME)
            summary.add("companies", created)
            admin = self._user(company, ADMIN, summary)
            salespeople = [self._user(company, person, summary) for person in SALESPEOPLE]
            orgs, persons = self._organizations(company, salespeople, summary)
            deals = self._deals(company, salespeople, orgs, persons, summary)
            types = {t.name: t for t in ActivityType.objects.filter(company=company)}
            for salesperson in salespeople:
                self._activities(rng, company, salesperson, types, deals, persons, summary)

        self._report(company, [admin, *salespeople], summary)

    # -- users and CRM items ------------------------------------------------------------------

    def _user(self, company: Company, spec: DemoUser, summary: Summary) -> User:
        user = User.objects.filter(email=spec.email).first()
        if user is not None:
            summary.add("users", created=False)
            return user
        extra: dict[str, Any] = {
            "company": company,
            "first_name": spec.first_name,
            "last_name": spec.last_name,
            "time_zone": spec.time_zone,
        }
        if spec.admin:
            user = User.objects.create_superuser(email=spec.email, password=DEMO_PASSWORD, **extra)
        else:
            user = User.objects.create_user(
                email=spec.email, password=DEMO_PASSWORD, role=User.Role.REGULAR, **extra
            )
        summary.add("users", created=True)
        return user

    def _organizations(
        self, company: Company, salespeople: list[User], summary: Summary
    ) -> tuple[dict[str, Organization], list[Person]]:
        orgs: dict[str, Organization] = {}
        persons: list[Person] = []
        for index, (name, address, contacts) in enumerate(ORGANIZATIONS):
            owner = salespeople[index % len(salespeople)]
            org, created = Organization.objects.get_or_create(
                company=company, name=name, defaults={"owner": owner, "address": address}
            )
            summary.add("organizations", created)
            orgs[name] = org
            for contact_name, email, phone in contacts:
                person, created = Person.objects.get_or_create(
                    company=company,
                    name=contact_name,
                    defaults={"owner": owner, "email": email, "phone": phone, "organization": org},
                )
                summary.add("persons", created)
                persons.append(person)
        return orgs, persons

    def _deals(
        self,
        company: Company,
        salespeople: list[User],
        orgs: dict[str, Organization],
        persons: list[Person],
        summary: Summary,
    ) -> list[Deal]:
        deals: list[Deal] = []
        for title, org_name, value, currency, owner_index, owner_only in DEALS:
            org = orgs[org_name]
            contact = next(person for person in persons if person.organization_id == org.pk)
            deal, created = Deal.objects.get_or_create(
                company=company,
                title=title,
                defaults={
                    "owner": salespeople[owner_index],
                    "organization": org,
                    "person": contact,
                    "value": Decimal(value),
                    "currency": currency,
                    "visibility": Visibility.OWNER if owner_only else Visibility.EVERYONE,
                },
            )
            summary.add("deals", created)
            deals.append(deal)
        return deals

    # -- activities ---------------------------------------------------------------------------

    def _activities(
        self,
        rng: random.Random,
        company: Company,
        owner: User,
        types: dict[str, ActivityType],
        deals: list[Deal],
        persons: list[Person],
        summary: Summary,
    ) -> None:
        # The plan is drawn even when it is not saved, so the other salesperson's plan stays the same.
        planned = [
            self._plan(rng, company, owner, types, deals, persons) for _ in range(ACTIVITIES_PER_SALESPERSON)
        ]
        existing = Activity.objects.filter(owner=owner).count()
        if existing:
            summary.add("activities", created=False, count=existing)
            return
        activities = Activity.objects.bulk_create([activity for activity, _ in planned])
        through = Activity.participants.through
        through.objects.bulk_create(
            [
                through(activity_id=activity.pk, person_id=person.pk)
                for activity, (_, participants) in zip(activities, planned, strict=True)
                for person in participants
            ]
        )
        summary.add("activities", created=True, count=len(activities))

    def _plan(
        self,
        rng: random.Random,
        company: Company,
        owner: User,
        types: dict[str, ActivityType],
        deals: list[Deal],
        persons: list[Person],
    ) -> tuple[Activity, list[Person]]:
        """One realistic activity for ``owner`` in the next six weeks, and its participants."""
        today = timezone.now().astimezone(owner.tzinfo).date()
        upcoming = (today + dt.timedelta(days=offset) for offset in range(WEEKS_AHEAD * 7))
        day = rng.choice([d for d in upcoming if d.weekday() < 5])  # salespeople work on weekdays
        type_name = rng.choices(list(TYPE_WEIGHTS), weights=list(TYPE_WEIGHTS.values()))[0]

        own_deals = [deal for deal in deals if deal.owner_id == owner.pk] or deals
        deal = rng.choice(own_deals) if rng.random() < 0.6 else None
        if deal is not None:
            person = next((p for p in persons if p.pk == deal.person_id), rng.choice(persons))
        else:
            person = rng.choice(persons)
        organization = next(p.organization for p in persons if p.pk == person.pk)
        private = rng.random() < 0.12
        subject = (
            rng.choice(PRIVATE_SUBJECTS)
            if private
            else rng.choice(SUBJECTS[type_name]).format(
                person=person.name,
                org=organization.name if organization else person.name,
                deal=deal.title if deal else (organization.name if organization else person.name),
            )
        )

        start_at, duration = self._when(rng, type_name, day, owner)
        participants: list[Person] = []
        guests: list[str] = []
        location = ""
        if type_name in {"Meeting", "Lunch"} and not private:
            colleagues = [
                p for p in persons if p.organization_id == person.organization_id and p.pk != person.pk
            ]
            participants = [person, *colleagues[: rng.randint(0, len(colleagues))]]
            guests = [p.email for p in participants if p.email]
            if rng.random() < 0.4:
                guests.append(rng.choice(("cfo", "procurement", "it-security")) + "@partner.example")
            location = rng.choice(LOCATIONS) if type_name == "Meeting" else "Café Central"
        elif type_name == "Call" and not private:
            participants = [person]

        linked = not private
        # What is due in the next couple of days is often already dealt with; a few later ones too.
        done = rng.random() < (0.5 if day <= today + dt.timedelta(days=2) else 0.08)
        activity = Activity(
            company=company,
            owner=owner,
            type=types[type_name],
            subject=subject,
            due_date=day,
            start_at=start_at,
            duration=duration,
            location=location,
            note=self._note(rng, type_name) if linked else "",
            guests=guests,
            deal=deal if linked else None,
            person=person if linked else None,
            organization=organization if linked else None,
            done=done,
            busy=type_name not in {"Task", "Email", "Deadline"},
            visibility=Visibility.OWNER if private else Visibility.EVERYONE,
        )
        return activity, participants

    @staticmethod
    def _when(
        rng: random.Random, type_name: str, day: dt.date, owner: User
    ) -> tuple[dt.datetime | None, dt.timedelta | None]:
        """Deadlines and most tasks are all-day; everything else has a time and a duration."""
        if type_name == "Deadline" or (type_name in {"Task", "Email"} and rng.random() < 0.6):
            return None, None
        if type_name == "Lunch":
            local = dt.time(12, rng.choice((0, 30)))
            minutes = rng.choice((60, 90))
        else:
            local = dt.time(rng.randint(8, 16), rng.choice((0, 15, 30, 45)))
            minutes = {"Call": rng.choice((15, 30, 30, 45)), "Meeting": rng.choice((30, 60, 60, 90))}.get(
                type_name, 30
            )
        return dt.datetime.combine(day, local, tzinfo=owner.tzinfo), dt.timedelta(minutes=minutes)

    @staticmethod
    def _note(rng: random.Random, type_name: str) -> str:
        notes = {
            "Call": ("Ask about budget and timeline.", "Confirm the decision makers.", ""),
            "Meeting": ("Agenda: goals, demo, next steps.", "Bring the updated pricing.", ""),
            "Task": ("Use the new template.", ""),
            "Deadline": ("Escalate if nothing by noon.", ""),
            "Email": ("Attach the PDF.", ""),
            "Lunch": ("Table booked for three.", ""),
        }
        return rng.choice(notes[type_name])

    # -- output -------------------------------------------------------------------------------

    def _report(self, company: Company, users: list[User], summary: Summary) -> None:
        write = self.stdout.write
        write(self.style.SUCCESS(f"Demo data ready for {company.name}."))
        kinds = ("companies", "users", "organizations", "persons", "deals", "activities")
        for kind in kinds:
            write(
                f"  {kind:<14} created {summary.created.get(kind, 0):>4}   kept {summary.kept.get(kind, 0):>4}"
            )
        write(f"  activity types: {ActivityType.objects.filter(company=company).count()}")
        for user in users:
            total = Activity.objects.filter(owner=user).count()
            private = Activity.objects.filter(owner=user, visibility=Visibility.OWNER).count()
            if total:
                write(f"  {user.email}: {total} activities, {private} private")
        write("")
        write("Logins (password for new demo users: " + DEMO_PASSWORD + "):")
        for user in users:
            role = "superuser, admin" if user.is_superuser else user.get_role_display()
            write(f"  {user.email:<28} {DEMO_PASSWORD}   ({role}, {user.time_zone})")
