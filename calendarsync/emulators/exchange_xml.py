"""SOAP plumbing of the Exchange emulator: namespaces, a tiny XML writer, envelopes and faults.

Responses are written with the prefixes Exchange itself uses (``s:`` SOAP, ``m:`` messages,
``t:`` types) and carry the ``t:ServerVersionInfo`` header exchangelib reads the server build
from. Requests are parsed with defusedxml (the emulator parses what any local client sends).

Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/ews-xml-elements-in-exchange
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element  # only the type; parsing goes through defusedxml
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree as SafeElementTree  # type: ignore[import-untyped]

# Where EWS answers (the path every Exchange server uses).
EWS_PATH = "/EWS/Exchange.asmx"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MESSAGES_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
TYPES_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
ERRORS_NS = "http://schemas.microsoft.com/exchange/services/2006/errors"

SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class ServerVersion:
    """What ``t:ServerVersionInfo`` says: the build, and the schema name the server reports.

    Exchange 2016 and 2019 both report ``Version="V2017_07_11"`` (a schema stamp, not a valid
    RequestServerVersion: clients keep the version they asked with) and take requests up to
    ``Exchange2016``; they differ in MinorVersion (1 and 2) and the build numbers.
    https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/serverversioninfo
    https://learn.microsoft.com/en-us/exchange/new-features/build-numbers-and-release-dates
    """

    major: int
    minor: int
    major_build: int
    minor_build: int
    schema: str = "V2017_07_11"

    @property
    def build(self) -> str:
        return f"{self.major}.{self.minor}.{self.major_build}.{self.minor_build}"

    def attributes(self) -> dict[str, str]:
        return {
            "MajorVersion": str(self.major),
            "MinorVersion": str(self.minor),
            "MajorBuildNumber": str(self.major_build),
            "MinorBuildNumber": str(self.minor_build),
            "Version": self.schema,
        }


# Exchange Server 2016 CU23 and Exchange Server 2019 CU14.
EXCHANGE_2016 = ServerVersion(15, 1, 2507, 6)
EXCHANGE_2019 = ServerVersion(15, 2, 1544, 4)
# What the emulator says it is while it answers a request (set by the emulator around a handler).
_reported_version: contextvars.ContextVar[ServerVersion] = contextvars.ContextVar(
    "exchange_server_version", default=EXCHANGE_2016
)


@contextmanager
def reporting_version(version: ServerVersion) -> Iterator[None]:
    """Envelopes written inside carry this ``ServerVersionInfo``."""
    token = _reported_version.set(version)
    try:
        yield
    finally:
        _reported_version.reset(token)


def m(tag: str) -> str:
    """Clark name of an element in the messages namespace."""
    return f"{{{MESSAGES_NS}}}{tag}"


def t(tag: str) -> str:
    """Clark name of an element in the types namespace."""
    return f"{{{TYPES_NS}}}{tag}"


class SoapError(Exception):
    """A request the emulator cannot make sense of: answered as a SOAP fault."""

    def __init__(self, code: str, message: str, *, status: int = 500, back_off_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.back_off_ms = back_off_ms


class EwsError(Exception):
    """An error of one response message (``ResponseClass="Error"`` with this ``ResponseCode``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Node:
    """An element to write: ``tag`` carries its prefix (``t:Subject``)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    text: str | None = None

    def add(self, child: Node | None) -> Node:
        if child is not None:
            self.children.append(child)
        return self

    def extend(self, children: Iterable[Node | None]) -> Node:
        for child in children:
            self.add(child)
        return self

    def render(self) -> str:
        attrs = "".join(f" {name}={quoteattr(value)}" for name, value in self.attrs.items())
        if not self.children and self.text is None:
            return f"<{self.tag}{attrs}/>"
        inner = escape(self.text) if self.text is not None else ""
        inner += "".join(child.render() for child in self.children)
        return f"<{self.tag}{attrs}>{inner}</{self.tag}>"


def node(tag: str, text: str | None = None, **attrs: str) -> Node:
    return Node(tag, dict(attrs), [], text)


def text_node(tag: str, value: str | None) -> Node | None:
    """An element with text, or nothing when the value is None."""
    return None if value is None else Node(tag, {}, [], value)


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def format_datetime(moment: dt.datetime) -> str:
    """xs:dateTime in UTC, as Exchange writes item times."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str | None, what: str) -> dt.datetime:
    """An xs:dateTime; one without an offset is taken as UTC (the client's TimeZoneContext is UTC)."""
    if not text:
        raise EwsError("ErrorInvalidValueForProperty", f"{what} is missing.")
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EwsError("ErrorInvalidValueForProperty", f"{what} is not a valid date and time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_bool(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")


def child_text(elem: Element, tag: str) -> str | None:
    found = elem.find(tag)
    return None if found is None else (found.text or "")


def parse_request(body: bytes) -> Element:
    """The SOAP envelope's Body's first element (the operation)."""
    try:
        root = SafeElementTree.fromstring(body)
    except Exception as exc:  # defusedxml raises ParseError and its own DefusedXmlException types
        raise SoapError("ErrorSchemaValidation", f"The request failed schema validation: {exc}") from None
    if not isinstance(root, Element) or root.tag != f"{{{SOAP_NS}}}Envelope":
        raise SoapError("ErrorSchemaValidation", "The request is not a SOAP envelope.")
    soap_body = root.find(f"{{{SOAP_NS}}}Body")
    if soap_body is None or len(soap_body) == 0:
        raise SoapError("ErrorSchemaValidation", "The SOAP envelope has no body.")
    return soap_body[0]


def envelope(body: Node) -> bytes:
    """A response envelope with the server version header and the m:/t: namespaces."""
    header = node("s:Header").add(Node("t:ServerVersionInfo", _reported_version.get().attributes()))
    body.attrs.setdefault("xmlns:m", MESSAGES_NS)
    body.attrs.setdefault("xmlns:t", TYPES_NS)
    root = Node(
        "s:Envelope",
        {"xmlns:s": SOAP_NS, "xmlns:t": TYPES_NS},
        [header, node("s:Body").add(body)],
    )
    return ("<?xml version='1.0' encoding='utf-8'?>\n" + root.render()).encode("utf-8")


def response_message(operation: str, *, error: EwsError | None = None) -> Node:
    """One ``m:{Operation}ResponseMessage``: success (add the payload) or an error."""
    if error is None:
        message = Node(f"m:{operation}ResponseMessage", {"ResponseClass": "Success"})
        message.add(node("m:ResponseCode", "NoError"))
        return message
    message = Node(f"m:{operation}ResponseMessage", {"ResponseClass": "Error"})
    message.add(node("m:MessageText", error.message))
    message.add(node("m:ResponseCode", error.code))
    message.add(node("m:DescriptiveLinkKey", "0"))
    return message


def operation_response(operation: str, messages: list[Node]) -> bytes:
    return envelope(node(f"m:{operation}Response").add(node("m:ResponseMessages").extend(messages)))


def fault(error: SoapError) -> bytes:
    """A SOAP fault as Exchange sends it (ErrorServerBusy carries BackOffMilliseconds)."""
    detail = node("detail")
    detail.add(Node("e:ResponseCode", {"xmlns:e": ERRORS_NS}, [], error.code))
    detail.add(Node("e:Message", {"xmlns:e": ERRORS_NS}, [], error.message))
    if error.back_off_ms is not None:
        detail.add(
            Node("t:MessageXml", {"xmlns:t": TYPES_NS}).add(
                node("t:Value", str(error.back_off_ms), Name="BackOffMilliseconds")
            )
        )
    soap_fault = node("s:Fault").extend(
        [
            Node("faultcode", {"xmlns:a": TYPES_NS}, [], f"a:{error.code}"),
            Node("faultstring", {"xml:lang": "en-US"}, [], error.message),
            detail,
        ]
    )
    root = Node("s:Envelope", {"xmlns:s": SOAP_NS}, [node("s:Body").add(soap_fault)])
    return ("<?xml version='1.0' encoding='utf-8'?>\n" + root.render()).encode("utf-8")
