"""Reads calendar items out of a rendered calendar page, the way a user (and a screen reader) sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID_ELEMENTS = {"img", "input", "br", "hr", "meta", "link", "source", "wbr", "col", "area", "base", "embed"}


@dataclass
class CalItem:
    pk: int
    tag: str
    classes: list[str]
    title: str
    # Where the week grid put it: the classes of its <li class="wk-entry ...">, and its column.
    placement: list[str]
    column: str
    visible: list[str] = field(default_factory=list)
    sync_visible: list[str] = field(default_factory=list)
    screen_reader: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Start time (or "All day") and subject: what the old tests compared."""
        return " ".join(" ".join(self.visible).split())

    @property
    def sync_text(self) -> str:
        return " ".join(" ".join(self.sync_visible).split())

    @property
    def accessible_text(self) -> str:
        return " ".join(" ".join(self.screen_reader).split())


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.items: list[CalItem] = []
        self.current: CalItem | None = None
        self.depth_of_item = -1

    def _classes(self, attrs: dict[str, str]) -> list[str]:
        return attrs.get("class", "").split()

    def _inside(self, css_class: str) -> bool:
        return any(css_class in self._classes(attrs) for _, attrs in self.stack[self.depth_of_item :])

    def _hidden(self) -> bool:
        return any(attrs.get("aria-hidden") == "true" for _, attrs in self.stack[self.depth_of_item :])

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {name: value or "" for name, value in attrs_list}
        if tag == "img" and self.current is not None:
            self.current.images.append(attrs.get("src", ""))
            if attrs.get("alt"):
                self.current.screen_reader.append(attrs["alt"])
        if tag in VOID_ELEMENTS:
            return
        self.stack.append((tag, attrs))
        if self.current is None and "data-activity" in attrs:
            entry = next((a for _, a in reversed(self.stack[:-1]) if "wk-entry" in self._classes(a)), {})
            column = next(
                (a.get("aria-label", "") for _, a in reversed(self.stack[:-1]) if "aria-label" in a), ""
            )
            self.current = CalItem(
                pk=int(attrs["data-activity"]),
                tag=tag,
                classes=self._classes(attrs),
                title=attrs.get("title", ""),
                placement=self._classes(entry),
                column=column,
            )
            self.depth_of_item = len(self.stack) - 1

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            return
        while self.stack:
            open_tag, _ = self.stack.pop()
            if self.current is not None and len(self.stack) == self.depth_of_item:
                self.items.append(self.current)
                self.current = None
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.current is None:
            return
        if not self._hidden():
            self.current.screen_reader.append(data)
        if self._inside("sr-only") or self._inside("cal-end"):
            return
        if self._inside("cal-sync"):
            self.current.sync_visible.append(data)
        else:
            self.current.visible.append(data)


def calendar_items(html: str) -> list[CalItem]:
    parser = _Parser()
    parser.feed(html)
    return parser.items
