"""Connecting a calendar account: the OAuth flow shared by Google and Microsoft 365, and each provider's connect views."""
