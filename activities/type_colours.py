"""An activity type's colour (A2) as one of a fixed palette of CSS classes.

Types store any hex colour, but pages may not carry ``style="..."`` (the Content-Security-Policy
has no 'unsafe-inline'): each colour is shown as the nearest palette entry, whose class
(``tc-<key>`` in ``static/css/calendar.css``) sets the colour. The palette's first entry is the
types' default colour, so the default is shown exactly.
"""

from __future__ import annotations

import functools
import re

PALETTE: dict[str, str] = {
    "blue": "#4f6bed",
    "sky": "#0ea5e9",
    "teal": "#0f9f8f",
    "green": "#22a34a",
    "lime": "#84cc16",
    "yellow": "#eab308",
    "orange": "#f97316",
    "red": "#e03e3e",
    "pink": "#ec4899",
    "purple": "#9333ea",
    "brown": "#a16207",
    "grey": "#6b7280",
}
DEFAULT_KEY = "blue"
# Masked activities (A6) carry no type colour: the colour would tell their type.
PRIVATE_CLASS = "tc-private"
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def _rgb(value: str) -> tuple[int, int, int] | None:
    match = _HEX.fullmatch(value.strip())
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _distance(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    """The "redmean" approximation of perceived colour difference (cheap, good enough to pick a swatch)."""
    mean_red = (first[0] + second[0]) / 2
    red, green, blue = (first[0] - second[0]), (first[1] - second[1]), (first[2] - second[2])
    return (2 + mean_red / 256) * red**2 + 4 * green**2 + (2 + (255 - mean_red) / 256) * blue**2


_PALETTE_RGB = {key: rgb for key, value in PALETTE.items() if (rgb := _rgb(value)) is not None}


@functools.lru_cache(maxsize=256)
def colour_key(value: str) -> str:
    """The palette key nearest to the hex colour ``value``; the default for anything unreadable."""
    rgb = _rgb(value or "")
    if rgb is None:
        return DEFAULT_KEY
    return min(_PALETTE_RGB, key=lambda key: _distance(rgb, _PALETTE_RGB[key]))


def colour_class(value: str) -> str:
    return f"tc-{colour_key(value)}"
