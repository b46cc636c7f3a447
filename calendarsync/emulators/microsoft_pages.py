"""The Microsoft emulator's own surfaces: the JSON control API (/_control/...) and the demo page (/).

The demo page plays "Outlook on the web": it lists the emulated users' calendars and lets a
person add, edit and delete events as that user, to watch the app sync them.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any

from calendarsync.emulators.google_http import (
    JsonDict,
    Request,
    Response,
    html_page,
    html_response,
    json_response,
    redirect,
)
from calendarsync.emulators.microsoft_state import GraphError

if TYPE_CHECKING:
    from calendarsync.emulators.microsoft import MicrosoftEmulator

DEMO_TIME_ZONE = "UTC"


# -- control API ---------------------------------------------------------------------------------


def handle_control(emulator: MicrosoftEmulator, req: Request) -> Response:
    name = "/".join(req.segments[1:])
    try:
        if req.method == "GET":
            if name == "counts":
                return json_response(emulator.request_counts())
            if name == "events":
                email = req.arg("email") or ""
                deleted = (req.arg("include_deleted") or "").lower() == "true"
                return json_response(
                    {"value": emulator.user_list_events(email, req.arg("calendar_id"), deleted)}
                )
            if name == "users":
                return json_response({"users": emulator.user_emails()})
            if name == "calendars":
                return json_response({"value": emulator.user_calendars(req.arg("email") or "")})
            if name in ("invitations", "responses"):
                return json_response({"value": _sent(emulator, name, req.arg("email") or "")})
            return json_response({"error": f"unknown control endpoint {name!r}"}, 404)
        if req.method != "POST":
            return json_response({"error": "use POST"}, 405)
        data = _json(req)
        return json_response(_control_post(emulator, name, data))
    except GraphError as error:
        return error.to_response()
    except KeyError as error:
        return json_response({"error": str(error.args[0] if error.args else error)}, 404)
    except (ValueError, TypeError) as error:
        return json_response({"error": str(error)}, 400)


def _json(req: Request) -> JsonDict:
    import json

    data = json.loads(req.body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("send a JSON object")
    return data


def _sent(emulator: MicrosoftEmulator, name: str, email: str) -> list[JsonDict]:
    """GET /_control/invitations and /_control/responses: what the mailbox sent, oldest first."""
    if name == "invitations":
        return [
            {"kind": kind, "recipient": recipient, "iCalUId": uid}
            for kind, recipient, uid in emulator.sent_invitations(email)
        ]
    return [
        {"response": response, "organizer": organizer, "iCalUId": uid}
        for response, organizer, uid in emulator.sent_responses(email)
    ]


def _control_post(emulator: MicrosoftEmulator, name: str, data: JsonDict) -> Any:
    calendar_id = data.get("calendar_id") or None
    if name == "users":
        emulator.add_user(data["email"], data.get("display_name"))
    elif name == "calendars":
        return {"id": emulator.add_calendar(data["email"], calendar_id, data.get("name") or "Calendar")}
    elif name == "clients":
        emulator.register_client(data["client_id"], data["client_secret"], data.get("redirect_uris"))
    elif name == "tokens":
        return emulator.issue_tokens(data["email"], list(data["scopes"]), data["client_id"])
    elif name == "events":
        return emulator.user_create_event(data["email"], dict(data["body"]), calendar_id)
    elif name == "events/update":
        return emulator.user_update_event(data["email"], data["event_id"], dict(data["changes"]), calendar_id)
    elif name == "events/delete":
        emulator.user_delete_event(data["email"], data["event_id"], calendar_id)
    elif name == "events/respond":
        emulator.user_respond(
            data["email"],
            data["event_id"],
            str(data["action"]),
            send_response=bool(data.get("send_response", True)),
            comment=str(data.get("comment") or ""),
        )
    elif name == "invitations/deliver":
        return emulator.deliver_invitation(
            data["email"],
            data["ical_uid"],
            data["organizer"],
            dict(data["body"]),
            organizer_name=data.get("organizer_name"),
        )
    elif name == "sent_mail/clear":
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


def handle_demo(emulator: MicrosoftEmulator, req: Request) -> Response:
    home = (req.script_name or "") + "/"
    if not req.segments:
        if req.method != "GET":
            return html_response(html_page("Method not allowed", "<p>Use GET.</p>"), 405)
        return html_response(_home_page(emulator, req))
    if req.method != "POST":
        return redirect(home, 303)
    form = {key: values[0] for key, values in req.form().items()}
    action = "/".join(req.segments[1:])
    calendar_id = form.get("calendar_id") or None
    try:
        if action == "users":
            emulator.add_user(form.get("email", ""))
        elif action == "events/create":
            emulator.user_create_event(form["email"], _event_body(form), calendar_id)
        elif action == "events/update":
            emulator.user_update_event(form["email"], form["event_id"], _event_body(form), calendar_id)
        elif action == "events/delete":
            emulator.user_delete_event(form["email"], form["event_id"], calendar_id)
        elif action == "revoke":
            emulator.revoke_tokens(form["email"])
        elif action == "expire_sync_tokens":
            emulator.expire_sync_tokens(form.get("email") or None)
        else:
            return html_response(html_page("Not found", "<p>Unknown action.</p>"), 404)
    except GraphError as error:
        return html_response(_home_page(emulator, req, error=error.message), 400)
    except (KeyError, ValueError) as error:
        return html_response(_home_page(emulator, req, error=str(error)), 400)
    return redirect(home, 303)


def _event_body(form: dict[str, str]) -> JsonDict:
    time_zone = form.get("time_zone") or DEMO_TIME_ZONE
    start, end = form.get("start", ""), form.get("end", "") or form.get("start", "")
    body: JsonDict = {
        "subject": form.get("subject", ""),
        "location": {"displayName": form.get("location", "")},
        "body": {"contentType": "text", "content": form.get("description", "")},
        "sensitivity": "private" if form.get("private") else "normal",
        "showAs": "free" if form.get("free") else "busy",
        "isAllDay": bool(form.get("all_day")),
    }
    if form.get("all_day"):
        first = dt.date.fromisoformat(start[:10])
        last = max(dt.date.fromisoformat(end[:10]), first + dt.timedelta(days=1))
        body["start"] = {"dateTime": f"{first}T00:00:00", "timeZone": time_zone}
        body["end"] = {"dateTime": f"{last}T00:00:00", "timeZone": time_zone}
    else:
        body["start"] = {"dateTime": dt.datetime.fromisoformat(start).isoformat(), "timeZone": time_zone}
        body["end"] = {"dateTime": dt.datetime.fromisoformat(end).isoformat(), "timeZone": time_zone}
    count = form.get("daily_count", "").strip()
    if count:
        body["recurrence"] = {
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "numbered",
                "startDate": body["start"]["dateTime"][:10],
                "numberOfOccurrences": int(count),
            },
        }
    return body


def _event_fields(event: JsonDict | None, email: str, calendar_id: str) -> str:
    escape = html.escape
    event = event or {}
    all_day = bool(event.get("isAllDay"))
    start = str(event.get("start", {}).get("dateTime", ""))[: 10 if all_day else 16]
    end = str(event.get("end", {}).get("dateTime", ""))[: 10 if all_day else 16]
    private = event.get("sensitivity") in ("private", "confidential")
    free = event.get("showAs") == "free"
    return f"""<input type="hidden" name="email" value="{escape(email)}">
<input type="hidden" name="calendar_id" value="{escape(calendar_id)}">
<label>Subject <input name="subject" value="{escape(str(event.get("subject", "")))}" required></label>
<label>Start <input name="start" value="{escape(start)}" placeholder="2030-01-31T09:00" required></label>
<label>End <input name="end" value="{escape(end)}" placeholder="2030-01-31T10:00"></label>
<label><input type="checkbox" name="all_day" value="1"{" checked" if all_day else ""}> All day (dates as YYYY-MM-DD)</label>
<label>Time zone <input name="time_zone" value="{DEMO_TIME_ZONE}"></label>
<label>Location <input name="location" value="{escape(str(event.get("location", {}).get("displayName", "")))}"></label>
<label>Description <textarea name="description">{escape(str(event.get("body", {}).get("content", "")))}</textarea></label>
<label><input type="checkbox" name="private" value="1"{" checked" if private else ""}> Private</label>
<label><input type="checkbox" name="free" value="1"{" checked" if free else ""}> Show as free</label>
<label>Repeat daily, times <input name="daily_count" inputmode="numeric" placeholder="e.g. 5"></label>"""


def _calendar_section(emulator: MicrosoftEmulator, email: str, calendar_id: str, name: str, base: str) -> str:
    escape = html.escape
    rows = []
    for event in emulator.user_list_events(email, calendar_id):
        flags = ", ".join(
            flag
            for flag in (
                event["sensitivity"] if event["sensitivity"] != "normal" else "",
                "free" if event["showAs"] == "free" else "",
                "series" if event["type"] == "seriesMaster" else "",
                "Teams" if event["isOnlineMeeting"] else "",
                "" if event["isOrganizer"] else f"invited by {event['organizer']['emailAddress']['address']}",
                "" if event["isOrganizer"] else event["responseStatus"]["response"],
                "cancelled" if event["isCancelled"] else "",
            )
            if flag
        )
        when = f"{event['start']['dateTime'][:16]} to {event['end']['dateTime'][:16]} UTC"
        rows.append(
            f"""<tr><td>{escape(event["subject"] or "(no title)")}<br><small>{escape(event["id"][:24])}...</small></td>
<td>{escape(when)}{" (all day)" if event["isAllDay"] else ""}</td><td>{escape(event["location"]["displayName"])}</td>
<td>{escape(flags)}</td>
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
        else "<p>No events.</p>"
    )
    return f"""<h3>{escape(name)}</h3>
{table}
<details><summary>Add an event to {escape(name)}</summary>
<form method="post" action="{base}/_demo/events/create">{_event_fields(None, email, calendar_id)}
<button type="submit">Add event</button></form></details>"""


def _home_page(emulator: MicrosoftEmulator, req: Request, error: str | None = None) -> str:
    escape = html.escape
    base = escape(req.script_name)
    with emulator.state.lock:
        calendars = {
            email: [(c.id, c.name) for c in user.calendars.values()]
            for email, user in emulator.state.users.items()
        }
    sections = []
    for email, user_calendars in calendars.items():
        parts = [_calendar_section(emulator, email, cal_id, name, base) for cal_id, name in user_calendars]
        sections.append(
            f"""<section><h2>{escape(email)}</h2>
<form method="post" action="{base}/_demo/revoke"><input type="hidden" name="email" value="{escape(email)}">
<button type="submit">Revoke the app's sessions</button></form>
<form method="post" action="{base}/_demo/expire_sync_tokens"><input type="hidden" name="email" value="{escape(email)}">
<button type="submit">Expire delta tokens</button></form>
{"".join(parts)}</section>"""
        )
    error_html = f"<p class='error'>{escape(error)}</p>" if error else ""
    body = f"""<h1>Microsoft 365 emulator</h1>
{error_html}
<p>Base URL <code>{escape(req.base_url)}</code>. Counts: <a href="{base}/_control/counts">/_control/counts</a>.</p>
{"".join(sections) or "<p>No users yet.</p>"}
<h2>Add a Microsoft 365 user</h2>
<form method="post" action="{base}/_demo/users"><label>E-mail <input type="email" name="email" required></label>
<button type="submit">Add user</button></form>"""
    return html_page("Microsoft 365 emulator", body)
