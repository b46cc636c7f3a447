"""The emulator's own surfaces: the JSON control API (/_control/...) and the demo page (/).

The demo page plays "Google Calendar in the browser": it lists the emulated users' calendars
and lets a person add, edit and delete events as that user, to watch the app sync them.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from calendarsync.emulators.google_http import (
    ApiError,
    JsonDict,
    Request,
    Response,
    html_page,
    html_response,
    json_response,
    parse_timestamp,
    redirect,
)

if TYPE_CHECKING:
    from calendarsync.emulators.google import GoogleEmulator

DEMO_TIME_ZONE = "UTC"


# -- control API ---------------------------------------------------------------------------------


def handle_control(emulator: GoogleEmulator, req: Request) -> Response:
    name = "/".join(req.segments[1:])
    try:
        if req.method == "GET":
            if name == "counts":
                return json_response(emulator.request_counts())
            if name == "events":
                email = req.arg("email") or ""
                calendar_id = req.arg("calendar_id") or "primary"
                deleted = (req.arg("include_deleted") or "").lower() == "true"
                return json_response({"items": emulator.user_list_events(email, calendar_id, deleted)})
            if name == "users":
                return json_response({"users": emulator.user_emails()})
            if name == "mail":
                return json_response({"items": [list(m) for m in emulator.sent_mail(req.arg("email") or "")]})
            return json_response({"error": f"unknown control endpoint {name!r}"}, 404)
        if req.method != "POST":
            return json_response({"error": "use POST"}, 405)
        return json_response(_control_post(emulator, name, req.json()))
    except ApiError as error:
        return error.to_response()
    except KeyError as error:
        return json_response({"error": str(error.args[0] if error.args else error)}, 404)
    except (ValueError, TypeError) as error:
        return json_response({"error": str(error)}, 400)


def _control_post(emulator: GoogleEmulator, name: str, data: JsonDict) -> Any:
    calendar_id = str(data.get("calendar_id") or "primary")
    if name == "users":
        emulator.add_user(data["email"])
    elif name == "calendars":
        emulator.add_calendar(data["email"], data["calendar_id"], data.get("summary") or data["calendar_id"])
    elif name == "clients":
        emulator.register_client(data["client_id"], data["client_secret"], data.get("redirect_uris"))
    elif name == "tokens":
        return emulator.issue_tokens(data["email"], list(data["scopes"]), data["client_id"])
    elif name == "events":
        return emulator.user_create_event(
            data["email"],
            dict(data["body"]),
            calendar_id,
            send_updates=str(data.get("send_updates") or "none"),
            video_call=bool(data.get("video_call")),
        )
    elif name == "events/update":
        return emulator.user_update_event(
            data["email"],
            data["event_id"],
            dict(data["changes"]),
            calendar_id,
            send_updates=str(data.get("send_updates") or "none"),
        )
    elif name == "events/delete":
        emulator.user_delete_event(
            data["email"], data["event_id"], calendar_id, send_updates=str(data.get("send_updates") or "none")
        )
    elif name == "events/respond":
        return emulator.user_respond(data["email"], data["event_id"], str(data["response"]))
    elif name == "invitations":
        return emulator.user_receive_invitation(data["email"], dict(data["body"]))
    elif name == "mail/clear":
        emulator.clear_sent_mail()
    elif name == "expire_sync_tokens":
        emulator.expire_sync_tokens(data.get("email"))
    elif name == "expire_access_tokens":
        emulator.expire_access_tokens(data.get("email"))
    elif name == "revoke":
        emulator.revoke_tokens(data["email"])
    elif name == "faults":
        emulator.inject_faults(
            str(data["kind"]),
            int(data.get("count", 1)),
            data.get("path_contains"),
            int(data.get("retry_after", 1)),
            data.get("method"),
        )
    elif name == "faults/clear":
        emulator.clear_faults()
    elif name == "reset_counts":
        emulator.reset_counts()
    elif name == "reset":
        emulator.reset()
    else:
        raise KeyError(f"unknown control endpoint {name!r}")
    return {"ok": True}


# -- demo page -----------------------------------------------------------------------------------


def handle_demo(emulator: GoogleEmulator, req: Request) -> Response:
    home = (req.script_name or "") + "/"
    if not req.segments:
        if req.method != "GET":
            return html_response(html_page("Method not allowed", "<p>Use GET.</p>"), 405)
        return html_response(_home_page(emulator, req))
    if req.method != "POST":
        return redirect(home, 303)
    form = {key: values[0] for key, values in req.form().items()}
    action = "/".join(req.segments[1:])
    try:
        if action == "users":
            emulator.add_user(form.get("email", ""))
        elif action == "events/create":
            emulator.user_create_event(form["email"], _event_body(form), form.get("calendar_id") or "primary")
        elif action == "events/update":
            emulator.user_update_event(
                form["email"], form["event_id"], _event_body(form), form.get("calendar_id") or "primary"
            )
        elif action == "events/delete":
            emulator.user_delete_event(form["email"], form["event_id"], form.get("calendar_id") or "primary")
        elif action == "revoke":
            emulator.revoke_tokens(form["email"])
        elif action == "expire_sync_tokens":
            emulator.expire_sync_tokens(form.get("email") or None)
        else:
            return html_response(html_page("Not found", "<p>Unknown action.</p>"), 404)
    except ApiError as error:
        return html_response(_home_page(emulator, req, error=error.message), 400)
    except (KeyError, ValueError) as error:
        return html_response(_home_page(emulator, req, error=str(error)), 400)
    return redirect(home, 303)


def _event_body(form: dict[str, str]) -> JsonDict:
    time_zone = form.get("time_zone") or DEMO_TIME_ZONE
    ZoneInfo(time_zone)  # an unknown zone raises ZoneInfoNotFoundError, a KeyError
    start, end = form.get("start", ""), form.get("end", "") or form.get("start", "")
    body: JsonDict = {
        "summary": form.get("summary", ""),
        "location": form.get("location", ""),
        "description": form.get("description", ""),
        "visibility": "private" if form.get("private") else "default",
    }
    if form.get("all_day"):
        first = dt.date.fromisoformat(start[:10])
        last = dt.date.fromisoformat(end[:10])
        body["start"] = {"date": first.isoformat()}
        body["end"] = {"date": max(last, first + dt.timedelta(days=1)).isoformat()}
    else:
        body["start"] = {"dateTime": dt.datetime.fromisoformat(start).isoformat(), "timeZone": time_zone}
        body["end"] = {"dateTime": dt.datetime.fromisoformat(end).isoformat(), "timeZone": time_zone}
    if form.get("recurrence", "").strip():
        body["recurrence"] = [form["recurrence"].strip()]
    else:
        body["recurrence"] = None
    return body


def _input_value(event_time: JsonDict) -> tuple[str, str]:
    """The value of a date/datetime-local input and the zone, for an EventDateTime."""
    if "date" in event_time:
        return event_time["date"], DEMO_TIME_ZONE
    zone = event_time.get("timeZone") or DEMO_TIME_ZONE
    local = parse_timestamp(event_time["dateTime"]).astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%dT%H:%M"), zone


def _event_fields(event: JsonDict | None, email: str, calendar_id: str) -> str:
    escape = html.escape
    event = event or {}
    start, zone = _input_value(event["start"]) if "start" in event else ("", DEMO_TIME_ZONE)
    end, _ = _input_value(event["end"]) if "end" in event else ("", DEMO_TIME_ZONE)
    all_day = "date" in event.get("start", {})
    recurrence = " ".join(event.get("recurrence", []))
    return f"""<input type="hidden" name="email" value="{escape(email)}">
<input type="hidden" name="calendar_id" value="{escape(calendar_id)}">
<label>Summary <input name="summary" value="{escape(event.get("summary", ""))}" required></label>
<label>Start <input name="start" value="{escape(start)}" placeholder="2030-01-31T09:00" required></label>
<label>End <input name="end" value="{escape(end)}" placeholder="2030-01-31T10:00"></label>
<label><input type="checkbox" name="all_day" value="1"{" checked" if all_day else ""}> All day
 (dates as YYYY-MM-DD)</label>
<label>Time zone <input name="time_zone" value="{escape(zone)}"></label>
<label>Location <input name="location" value="{escape(event.get("location", ""))}"></label>
<label>Description <textarea name="description">{escape(event.get("description", ""))}</textarea></label>
<label><input type="checkbox" name="private" value="1"{" checked" if event.get("visibility") == "private" else ""}>
 Private</label>
<label>Recurrence <input name="recurrence" value="{escape(recurrence)}" placeholder="RRULE:FREQ=WEEKLY;COUNT=4">
</label>"""


def _when(event: JsonDict) -> str:
    start, end = event["start"], event["end"]
    if "date" in start:
        return f"{start['date']} to {end['date']} (all day)"
    zone = start.get("timeZone", "")
    return f"{start['dateTime']} to {end['dateTime']} {zone}".strip()


def _calendar_section(emulator: GoogleEmulator, email: str, calendar_id: str, summary: str, base: str) -> str:
    escape = html.escape
    today = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    rows = []
    for event in emulator.user_list_events(email, calendar_id):
        ends = parse_timestamp(event["end"]["dateTime"]) if "dateTime" in event["end"] else None
        if ends is not None and ends < today and not event.get("recurrence"):
            continue
        flags = ", ".join(
            filter(
                None,
                ["private" if event.get("visibility") == "private" else "", *event.get("recurrence", [])],
            )
        )
        rows.append(
            f"""<tr><td>{escape(event.get("summary", "(no title)"))}<br><small>{escape(event["id"])}</small></td>
<td>{escape(_when(event))}</td><td>{escape(event.get("location", ""))}</td><td>{escape(flags)}</td>
<td><details><summary>Edit</summary><form method="post" action="{base}/_demo/events/update">
<input type="hidden" name="event_id" value="{escape(event["id"])}">
{_event_fields(event, email, calendar_id)}<button type="submit">Save</button></form></details>
<form method="post" action="{base}/_demo/events/delete">
<input type="hidden" name="email" value="{escape(email)}">
<input type="hidden" name="calendar_id" value="{escape(calendar_id)}">
<input type="hidden" name="event_id" value="{escape(event["id"])}">
<button type="submit">Delete</button></form></td></tr>"""
        )
    table = (
        "<table><tr><th>Event</th><th>When</th><th>Where</th><th>Flags</th><th></th></tr>\n"
        + "\n".join(rows)
        + "</table>"
        if rows
        else "<p>No upcoming events.</p>"
    )
    return f"""<h3>{escape(summary)} <small>({escape(calendar_id)})</small></h3>
{table}
<details><summary>Add an event to {escape(summary)}</summary>
<form method="post" action="{base}/_demo/events/create">{_event_fields(None, email, calendar_id)}
<button type="submit">Add event</button></form></details>"""


def _home_page(emulator: GoogleEmulator, req: Request, error: str | None = None) -> str:
    escape = html.escape
    base = escape(req.script_name)
    with emulator.state.lock:
        calendars = {
            email: [(c.id, c.summary) for c in user.calendars.values()]
            for email, user in emulator.state.users.items()
        }
    sections = []
    for email, user_calendars in calendars.items():
        parts = [
            _calendar_section(emulator, email, cal_id, summary, base) for cal_id, summary in user_calendars
        ]
        sections.append(
            f"""<section><h2>{escape(email)}</h2>
<form method="post" action="{base}/_demo/revoke"><input type="hidden" name="email" value="{escape(email)}">
<button type="submit">Remove the app's access (revoke tokens)</button></form>
<form method="post" action="{base}/_demo/expire_sync_tokens">
<input type="hidden" name="email" value="{escape(email)}">
<button type="submit">Expire sync tokens</button></form>
{"".join(parts)}</section>"""
        )
    error_html = f"<p class='error'>{escape(error)}</p>" if error else ""
    body = f"""<h1>Google Calendar emulator</h1>
{error_html}
<p>Base URL <code>{escape(req.base_url)}</code>. Counts: <a href="{base}/_control/counts">/_control/counts</a>.</p>
{"".join(sections) or "<p>No users yet.</p>"}
<h2>Add a Google user</h2>
<form method="post" action="{base}/_demo/users"><label>E-mail <input type="email" name="email" required></label>
<button type="submit">Add user</button></form>"""
    return html_page("Google Calendar emulator", body)
