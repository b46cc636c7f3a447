"""The Exchange emulator's own surfaces: the JSON control API (/_control/...) and the demo page (/).

The demo page plays "Outlook on the web": it lists the mailboxes and their calendars and lets a
person add, edit and delete events as that user, switch two-factor sign-in on and off, change
the password, and expire sync states, to watch the app react.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any

from calendarsync.emulators.exchange_state import zone_of
from calendarsync.emulators.exchange_xml import EWS_PATH, EXCHANGE_2016, EXCHANGE_2019, EwsError
from calendarsync.emulators.google_http import (
    JsonDict,
    Request,
    Response,
    html_page,
    html_response,
    json_response,
    redirect,
)

if TYPE_CHECKING:
    from calendarsync.emulators.exchange import ExchangeEmulator


# -- control API ---------------------------------------------------------------------------------

SERVER_VERSIONS = {"2016": EXCHANGE_2016, "2019": EXCHANGE_2019}


def handle_control(emulator: ExchangeEmulator, req: Request) -> Response:
    name = "/".join(req.segments[1:])
    try:
        if req.method == "GET":
            if name == "counts":
                return json_response(emulator.request_counts())
            if name == "events":
                deleted = (req.arg("include_deleted") or "").lower() == "true"
                return json_response(
                    {"items": emulator.user_list_events(req.arg("email") or "", include_deleted=deleted)}
                )
            if name == "users":
                return json_response({"users": emulator.user_emails()})
            if name == "meeting_messages":
                messages = emulator.meeting_messages(req.arg("email") or "")
                return json_response({"messages": [list(message) for message in messages]})
            if name == "calendar":
                return json_response({"id": emulator.calendar_folder_id(req.arg("email") or "")})
            if name == "auth":
                return json_response(_auth_state(emulator))
            return json_response({"error": f"unknown control endpoint {name!r}"}, 404)
        if req.method != "POST":
            return json_response({"error": "use POST"}, 405)
        try:
            data = req.json()
        except Exception:  # google_http raises its own ApiError for a body that is not JSON
            return json_response({"error": "send a JSON object"}, 400)
        return json_response(_control_post(emulator, name, data))
    except EwsError as error:
        return json_response({"error": error.message, "code": error.code}, 400)
    except KeyError as error:
        return json_response({"error": str(error.args[0] if error.args else error)}, 404)
    except (ValueError, TypeError) as error:
        return json_response({"error": str(error)}, 400)


def _control_post(emulator: ExchangeEmulator, name: str, data: JsonDict) -> Any:
    if name == "users":
        emulator.add_user(
            data["email"],
            data["password"],
            two_factor=bool(data.get("two_factor", False)),
            app_password=data.get("app_password"),
        )
    elif name == "users/two_factor":
        emulator.set_two_factor(data["email"], bool(data["enabled"]), data.get("app_password"))
    elif name == "users/calendar_access":
        emulator.set_calendar_access(data["email"], bool(data["allowed"]))
    elif name == "revoke":
        emulator.revoke(data["email"], data.get("new_password"))
    elif name == "events":
        return emulator.user_create_event(data["email"], dict(data["fields"]))
    elif name == "events/update":
        return emulator.user_update_event(data["email"], data["event_id"], dict(data["changes"]))
    elif name == "events/delete":
        emulator.user_delete_event(data["email"], data["event_id"])
    elif name == "meetings":
        return emulator.user_create_meeting(data["email"], dict(data["fields"]))
    elif name == "meetings/invitation":
        return emulator.user_receive_invitation(
            data["email"], data["uid"], organizer=data["organizer"], fields=dict(data["fields"])
        )
    elif name == "meetings/respond":
        emulator.user_respond(data["email"], data["event_id"], data["response"])
    elif name in ("expire_sync_states", "expire_sync_tokens"):
        emulator.expire_sync_tokens(data.get("email"))
    elif name == "faults":
        emulator.inject_faults(
            str(data["kind"]),
            int(data.get("count", 1)),
            data.get("operation"),
            int(data.get("back_off_ms", 1000)),
        )
    elif name == "faults/clear":
        emulator.clear_faults()
    elif name == "auth":
        # {"methods": ["ntlm", "basic"]} and/or {"server_version": "2016" | "2019"}
        if "methods" in data:
            emulator.set_auth_methods(list(data["methods"]))
        if "server_version" in data:
            emulator.set_server_version(SERVER_VERSIONS[str(data["server_version"])])
        return _auth_state(emulator)
    elif name == "reset_counts":
        emulator.reset_counts()
    elif name == "reset":
        emulator.reset()
    else:
        raise KeyError(f"unknown control endpoint {name!r}")
    return {"ok": True}


def _auth_state(emulator: ExchangeEmulator) -> JsonDict:
    return {
        "methods": list(emulator.auth_methods),
        "server_version": emulator.server_version.build,
        "counts": emulator.auth_counts(),
    }


# -- demo page -----------------------------------------------------------------------------------


def handle_demo(emulator: ExchangeEmulator, req: Request) -> Response:
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
            emulator.add_user(
                form.get("email", ""),
                form.get("password", ""),
                two_factor=bool(form.get("two_factor")),
                app_password=form.get("app_password") or None,
            )
        elif action == "users/two_factor":
            emulator.set_two_factor(
                form["email"], bool(form.get("enabled")), form.get("app_password") or None
            )
        elif action == "users/calendar_access":
            emulator.set_calendar_access(form["email"], bool(form.get("allowed")))
        elif action == "revoke":
            emulator.revoke(form["email"], form.get("new_password") or None)
        elif action == "events/create":
            emulator.user_create_event(form["email"], _event_fields(form))
        elif action == "events/update":
            emulator.user_update_event(form["email"], form["event_id"], _event_fields(form))
        elif action == "events/delete":
            emulator.user_delete_event(form["email"], form["event_id"])
        elif action == "expire_sync_states":
            emulator.expire_sync_tokens(form.get("email") or None)
        else:
            return html_response(html_page("Not found", "<p>Unknown action.</p>"), 404)
    except EwsError as error:
        return html_response(_home_page(emulator, req, error=error.message), 400)
    except (KeyError, ValueError) as error:
        return html_response(_home_page(emulator, req, error=str(error)), 400)
    return redirect(home, 303)


def _event_fields(form: dict[str, str]) -> dict[str, Any]:
    start, end = form.get("start", "").strip(), (form.get("end", "") or form.get("start", "")).strip()
    fields: dict[str, Any] = {
        "subject": form.get("subject", ""),
        "location": form.get("location", ""),
        "body": form.get("body", ""),
        "private": bool(form.get("private")),
        "busy": not form.get("free"),
        "time_zone": form.get("time_zone") or "UTC",
    }
    if form.get("all_day"):
        first, last = dt.date.fromisoformat(start[:10]), dt.date.fromisoformat(end[:10])
        fields["start"], fields["end"] = first, max(last, first + dt.timedelta(days=1))
    else:
        fields["start"], fields["end"] = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    pattern = form.get("repeat", "")
    if pattern:
        fields["recurrence"] = {"pattern": pattern, "count": int(form.get("repeat_count") or 5)}
    elif "repeat" in form:
        fields["recurrence"] = None
    return fields


def _local_input(iso: str, zone: str, all_day: bool) -> str:
    moment = dt.datetime.fromisoformat(iso).astimezone(zone_of(zone))
    return moment.date().isoformat() if all_day else moment.strftime("%Y-%m-%dT%H:%M")


def _event_inputs(event: dict[str, Any] | None, email: str) -> str:
    escape = html.escape
    event = event or {}
    zone = str(event.get("time_zone") or "UTC")
    all_day = bool(event.get("all_day"))
    start = _local_input(event["start"], zone, all_day) if event else ""
    end = _local_input(event["end"], zone, all_day) if event else ""
    recurrence = event.get("recurrence") or {}
    repeat = {"DailyRecurrence": "daily", "WeeklyRecurrence": "weekly"}.get(
        str(recurrence.get("pattern")), ""
    )
    options = "".join(
        f'<option value="{value}"{" selected" if value == repeat else ""}>{label}</option>'
        for value, label in (("", "Does not repeat"), ("daily", "Daily"), ("weekly", "Weekly"))
    )
    return f"""<input type="hidden" name="email" value="{escape(email)}">
<label>Subject <input name="subject" value="{escape(str(event.get("subject", "")))}" required></label>
<label>Start <input name="start" value="{escape(start)}" placeholder="2030-01-31T09:00" required></label>
<label>End <input name="end" value="{escape(end)}" placeholder="2030-01-31T10:00"></label>
<label><input type="checkbox" name="all_day" value="1"{" checked" if all_day else ""}> All day
 (dates as YYYY-MM-DD, end exclusive)</label>
<label>Time zone <input name="time_zone" value="{escape(zone)}"></label>
<label>Location <input name="location" value="{escape(str(event.get("location", "")))}"></label>
<label>Notes <textarea name="body">{escape(str(event.get("body", "")))}</textarea></label>
<label><input type="checkbox" name="private" value="1"{" checked" if event.get("sensitivity") == "Private" else ""}>
 Private</label>
<label><input type="checkbox" name="free" value="1"{" checked" if event.get("free_busy") == "Free" else ""}>
 Show as free</label>
<label>Repeat <select name="repeat">{options}</select></label>
<label>Occurrences <input name="repeat_count" value="{escape(str(recurrence.get("count") or 5))}" size="4"></label>"""


def _events_table(emulator: ExchangeEmulator, email: str, base: str) -> str:
    escape = html.escape
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    rows = []
    for event in emulator.user_list_events(email):
        if dt.datetime.fromisoformat(event["end"]) < since and not event["recurrence"]:
            continue
        recurrence = event["recurrence"]
        flags = ", ".join(
            filter(
                None,
                [
                    "private" if event["sensitivity"] == "Private" else "",
                    "free" if event["free_busy"] == "Free" else "",
                    f"{recurrence['pattern']} x{recurrence['count'] or 'ever'}" if recurrence else "",
                    f"invited by {event['organizer']} ({event['my_response']})" if event["organizer"] else "",
                    "cancelled by the organizer" if event["is_cancelled"] else "",
                ],
            )
        )
        when = f"{event['start']} to {event['end']}" + (" (all day)" if event["all_day"] else "")
        rows.append(
            f"""<tr><td>{escape(event["subject"] or "(no subject)")}<br><small>{escape(event["id"])}</small></td>
<td>{escape(when)} {escape(event["time_zone"])}</td><td>{escape(event["location"])}</td><td>{escape(flags)}</td>
<td><details><summary>Edit</summary><form method="post" action="{base}/_demo/events/update">
<input type="hidden" name="event_id" value="{escape(event["id"])}">
{_event_inputs(event, email)}<button type="submit">Save</button></form></details>
<form method="post" action="{base}/_demo/events/delete">
<input type="hidden" name="email" value="{escape(email)}">
<input type="hidden" name="event_id" value="{escape(event["id"])}">
<button type="submit">Delete</button></form></td></tr>"""
        )
    if not rows:
        return "<p>No upcoming events.</p>"
    header = "<tr><th>Event</th><th>When (UTC)</th><th>Where</th><th>Flags</th><th></th></tr>"
    return f"<table>{header}\n" + "\n".join(rows) + "</table>"


def _mailbox_section(emulator: ExchangeEmulator, email: str, base: str) -> str:
    escape = html.escape
    with emulator.state.lock:
        mailbox = emulator.state.mailbox(email)
        two_factor, app_password, access = mailbox.two_factor, mailbox.app_password, mailbox.calendar_access
    hidden = f'<input type="hidden" name="email" value="{escape(email)}">'
    sign_in = (
        f"Two-factor sign-in is <strong>on</strong>: apps must use the app password "
        f"<code>{escape(app_password or '')}</code>."
        if two_factor
        else "Two-factor sign-in is off: apps sign in with the password."
    )
    return f"""<section><h2>{escape(email)}</h2>
<p>{sign_in}</p>
<form method="post" action="{base}/_demo/users/two_factor">{hidden}
<input type="hidden" name="enabled" value="{"" if two_factor else "1"}">
{"" if two_factor else '<label>App password <input name="app_password" required></label>'}
<button type="submit">{"Turn two-factor sign-in off" if two_factor else "Turn two-factor sign-in on"}</button></form>
<form method="post" action="{base}/_demo/revoke">{hidden}
<label>New password <input name="new_password"></label>
<button type="submit">Change password (app passwords stop working)</button></form>
<form method="post" action="{base}/_demo/users/calendar_access">{hidden}
<input type="hidden" name="allowed" value="{"" if access else "1"}">
<button type="submit">{"Deny" if access else "Allow"} access to the calendar folder</button></form>
<form method="post" action="{base}/_demo/expire_sync_states">{hidden}
<button type="submit">Expire sync states</button></form>
<h3>Calendar</h3>
{_events_table(emulator, email, base)}
<details><summary>New event</summary>
<form method="post" action="{base}/_demo/events/create">{_event_inputs(None, email)}
<button type="submit">Add event</button></form></details></section>"""


def _home_page(emulator: ExchangeEmulator, req: Request, error: str | None = None) -> str:
    escape = html.escape
    base = escape(req.script_name)
    sections = [_mailbox_section(emulator, email, base) for email in emulator.user_emails()]
    error_html = f"<p class='error'>{escape(error)}</p>" if error else ""
    body = f"""<h1>Exchange (EWS) emulator</h1>
{error_html}
<p>EWS endpoint <code>{escape(req.base_url + EWS_PATH)}</code>
(sign-in: {escape(" and ".join(m.upper() if m == "ntlm" else m.title() for m in emulator.auth_methods))};
Exchange Server build {escape(emulator.server_version.build)}).
Counts: <a href="{base}/_control/counts">/_control/counts</a>,
sign-in: <a href="{base}/_control/auth">/_control/auth</a>.</p>
{"".join(sections) or "<p>No mailboxes yet.</p>"}
<h2>Add a mailbox</h2>
<form method="post" action="{base}/_demo/users">
<label>E-mail <input type="email" name="email" required></label>
<label>Password <input name="password" required></label>
<label><input type="checkbox" name="two_factor" value="1"> Two-factor sign-in</label>
<label>App password <input name="app_password"></label>
<button type="submit">Add mailbox</button></form>"""
    return html_page("Exchange emulator", body)
