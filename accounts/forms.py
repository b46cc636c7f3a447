from __future__ import annotations

import zoneinfo

from django import forms

from accounts.models import User


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
