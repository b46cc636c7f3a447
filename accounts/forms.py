from __future__ import annotations

import zoneinfo

from allauth.account.forms import AddEmailForm
from allauth.account.models import EmailAddress
from django import forms

from accounts.models import User

ADDRESS_TAKEN = "This e-mail address is already used by another CalSync user. Enter your own address."


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class ProfileForm(forms.ModelForm[User]):
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        help_text="Dates and times in CalSync are shown in this time zone.",
    )

    class Meta:
        model = User
        fields = ("first_name", "last_name", "time_zone")


class ChangeEmailForm(AddEmailForm):  # type: ignore[misc]  # allauth ships no types
    """allauth's change-e-mail form, refusing another user's address (issue #13, finding 13).

    allauth accepts it quietly while ACCOUNT_PREVENT_ENUMERATION is on (the verification mail
    would go to its owner); here the user is signed in and has just re-entered their password,
    and a clear error helps more than a mail that never comes.
    """

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        if used_by_another_user(email, self.user):
            raise forms.ValidationError(ADDRESS_TAKEN, code="email_taken")
        return str(super().clean_email())


def used_by_another_user(email: str, user: User) -> bool:
    """Whether ``email`` is another user's login or verified address (a pending change is not)."""
    return (
        User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists()
        or EmailAddress.objects.filter(email__iexact=email, verified=True).exclude(user_id=user.pk).exists()
    )
