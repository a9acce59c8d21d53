"""The callbacks list's filters and pages (/callbacks/): what it says it shows, and links that keep the filters.
The list itself, and callbacks made, kept and announced: tests/test_callbacks.py."""

from __future__ import annotations

import re

import pytest

from tests.test_callbacks import promised

pytestmark = pytest.mark.django_db


def test_the_list_without_a_choice_says_it_shows_all_open_as_it_does(supervisor_client, agent_user, contact):
    later = promised(agent_user, contact, hours=5)  # not overdue, not necessarily today

    html = supervisor_client.get("/callbacks/").content.decode()

    assert f'id="callback-{later.pk}"' in html
    shows = re.search(r'<select name="show"[^>]*>(.*?)</select>', html, re.S).group(1)
    options = re.findall(r"<option[^>]*>([^<]*)</option>", shows)
    selected = re.findall(r"<option[^>]*selected[^>]*>([^<]*)</option>", shows)
    assert (selected or options)[0] == "All open"  # a select with none selected shows its first option


def test_the_lists_first_page_link_keeps_its_filters(supervisor_client, agent_user, contact, monkeypatch):
    from calls.views import callbacks as views

    monkeypatch.setattr(views, "PER_PAGE", 1)
    for hours in (-3, -2):
        promised(agent_user, contact, hours=hours)
    filters = f"?show=overdue&person={agent_user.pk}"

    first = supervisor_client.get("/callbacks/" + filters)
    second = supervisor_client.get("/callbacks/" + first.context["next_link"])

    assert f'href="/callbacks/{filters.replace("&", "&amp;")}">« First page' in second.content.decode()
