"""Read a rendered activity form back as the browser would submit it (without JavaScript).

Tests that post what the page itself shows catch a field that does not round-trip: a
value the form renders but cannot read back is a value lost on the next save.
"""

from __future__ import annotations

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_form = False
        self.values: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._text: list[str] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._option: tuple[str | None, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and "data-activity-form" in found:
            self.in_form = True
        if not self.in_form or "disabled" in found:
            return
        name = found.get("name")
        if tag == "input" and name:
            kind = found.get("type", "text")
            if kind in {"checkbox", "radio"}:
                if "checked" in found:
                    self.values.append((name, found.get("value") or "on"))
            elif kind not in {"submit", "button", "reset"}:
                self.values.append((name, found.get("value") or ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._option = (found.get("value"), "selected" in found)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None or self._option is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.in_form:
            self.in_form = False
        elif tag == "textarea" and self._textarea is not None:
            # The HTML parser drops the one newline right after <textarea>; so does a browser.
            self.values.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None
        elif tag == "option" and self._option is not None:
            value, selected = self._option
            self._options.append((value if value is not None else "".join(self._text).strip(), selected))
            self._option = None
        elif tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [
                value for value, _ in self._options[:1]
            ]
            self.values.extend((self._select, value) for value in chosen)
            self._select = None


def submitted_values(html: str) -> dict[str, list[str]]:
    """What posting the activity form unchanged would send: ``{name: [values]}``."""
    reader = _FormReader()
    reader.feed(html)
    posted: dict[str, list[str]] = {}
    for name, value in reader.values:
        posted.setdefault(name, []).append(value)
    return posted
