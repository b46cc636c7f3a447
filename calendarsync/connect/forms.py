"""The Exchange connect form (C3, C5): e-mail, password or app password, optional server URL."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import URLValidator

from calendarsync.providers.exchange.network import plain_http_allowed


class HttpsURLField(forms.URLField):
    """A password is sent to this server: https only (never ftp, javascript:, ...).

    Plain http is allowed with DEBUG on, and for a loopback host that EXCHANGE_ALLOWED_NETWORKS
    allows (the local Exchange emulator). Where the host may be is checked when connecting.
    """

    default_validators = [URLValidator(schemes=["https", "http"])]

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not plain_http_allowed(str(value)):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class ExchangeConnectForm(forms.Form):
    """C3 Exchange Server (on-premises): e-mail, password (or app password, C5), optional server URL,
    and under "Advanced" the sign-in method (issue #16: automatic by the server's challenges)."""

    email = forms.EmailField(
        label="E-mail address",
        error_messages={
            "required": "Enter your e-mail address.",
            "invalid": "Enter a valid e-mail address, like name@example.com.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        error_messages={"required": "Enter your password (or an app password)."},
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=(
            "If your account uses two-factor authentication, create an app password in your Microsoft "
            "account and paste it here instead of your normal password."
        ),
    )
    server_url = HttpsURLField(
        label="Server URL (optional)",
        required=False,
        assume_scheme="https",
        error_messages={
            "invalid": "Enter the server's https:// address, like https://mail.example.com/EWS/Exchange.asmx.",
        },
        help_text="Leave empty to find the server from your e-mail address.",
    )
    auth_type = forms.ChoiceField(
        label="Sign-in method",
        choices=(
            ("auto", "Automatic (what the server offers: NTLM, else Basic)"),
            ("ntlm", "NTLM"),
            ("basic", "Basic (over https)"),
        ),
        initial="auto",
        required=False,
        help_text="Change it only if your IT admin tells you which one the server uses.",
    )

    def clean_auth_type(self) -> str:
        return str(self.cleaned_data.get("auth_type") or "auto")
