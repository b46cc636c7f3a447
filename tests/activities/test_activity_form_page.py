"""The activity form page: nothing a strict CSP would block, labelled and ARIA-described controls (A3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.activities.conftest import berlin, make_deal, make_person, timed

CREATE = reverse("activities:create")

pytestmark = pytest.mark.usefixtures("frozen_now")


@pytest.fixture
def pages(owner_client, owner) -> dict[str, str]:
    """The form as it is first shown, when editing, and when re-shown after a refused save."""
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), deal=make_deal(owner))
    activity.participants.add(make_person(owner, "Pat Buyer"))
    make_person(owner, "Patricia Other")
    refused = owner_client.post(CREATE, {"subject": "", "participants_query": "pat", "guests": "bad@"})
    return {
        "new": owner_client.get(CREATE).content.decode(),
        "edit": owner_client.get(reverse("activities:edit", args=[activity.pk])).content.decode(),
        "refused": refused.content.decode(),
    }


def test_a3_form_page_has_nothing_a_csp_without_unsafe_inline_blocks(pages):
    for html in pages.values():
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
        assert not re.search(r"<style\b", html), "inline <style>"
        assert not re.search(r"\sstyle\s*=", html), "style attribute"
        assert not re.search(r"\son[a-z]+\s*=", html), "event handler attribute"
        assert "javascript:" not in html
        assert "js:" not in html.replace("activity-form.js", "")  # no htmx hx-vals code
        assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html), "external resource"
        assert '<script src="/static/js/activity-form.js" defer></script>' in html
        assert '<link rel="stylesheet" href="/static/css/form.css">' in html
        # htmx would otherwise inject a <style> element of its own.
        assert '"includeIndicatorStyles": false' in html


def test_a3_static_files_of_the_form_exist_and_use_no_eval():
    static = Path(settings.BASE_DIR) / "static"
    script = (static / "js" / "activity-form.js").read_text()
    assert "eval(" not in script
    assert "new Function" not in script
    assert "innerHTML" not in script
    assert (static / "css" / "form.css").is_file()


def test_a3_pickers_are_aria_comboboxes_with_a_listbox(pages):
    html = pages["edit"]
    for field in ("participants", "deal", "person", "organization"):
        combobox = re.search(rf'<input[^>]*id="id_{field}_query"[^>]*>', html, re.DOTALL)
        assert combobox is not None
        tag = combobox.group(0)
        assert 'role="combobox"' in tag
        assert 'aria-expanded="false"' in tag
        assert f'aria-controls="{field}-listbox"' in tag
        assert 'aria-autocomplete="list"' in tag
        assert f'hx-get="/activities/pickers/{field}/"' in tag
        assert f'<label for="id_{field}_query"' in html
        assert f'id="{field}-listbox" role="listbox"' in html
    assert 'role="status"' in html


def test_a3_every_control_has_a_label(pages):
    for html in pages.values():
        form = html[html.index("data-activity-form") :]
        labelled = set(re.findall(r'<label [^>]*for="([^"]+)"', form))
        label_ids = set(re.findall(r'<label [^>]*id="([^"]+)"', form))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", form):
            if 'type="hidden"' in tag:
                continue
            control_id = re.search(r'\sid="([^"]+)"', tag)
            labelled_by = re.search(r'aria-labelledby="([^"]+)"', tag)
            assert control_id is not None, tag
            assert control_id.group(1) in labelled or (labelled_by and labelled_by.group(1) in label_ids), tag


def test_a3_refused_form_marks_the_fields_and_describes_the_errors(pages):
    html = pages["refused"]
    assert "The activity was not saved." in html
    assert re.search(r'<input[^>]*id="id_participants_query"[^>]*aria-invalid="true"', html, re.DOTALL)
    assert 'aria-describedby="participants-help participants-errors"' in html
    assert 'id="participants-errors"' in html
    assert "“bad@” is not a valid e-mail address." in html
    assert 'id="id_guests_error"' in html


def test_a4_a3_no_recurrence_and_no_placeholder_text(pages):
    for html in pages.values():
        lowered = html.lower()
        assert "recurr" not in lowered
        assert "placeholder" not in lowered
        assert "todo" not in lowered
        assert "lorem" not in lowered
