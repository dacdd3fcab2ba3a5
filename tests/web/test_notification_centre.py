"""The notification centre: unread count in the header, the list (newest first, by pages), mark read."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from web.extensions import db
from workflows import notification_centre
from workflows.models import Notification

from .page_checks import post


@pytest.fixture
def notify(app, clock, league):
    """Write ``count`` in-app notifications to ``recipient`` (oldest first); returns their ids."""
    def write(recipient: str = "zhang", count: int = 1, subject: str = "通知", channel: str = "in_app") -> list[int]:
        with app.app_context():
            rows = [Notification(recipient=recipient, channel=channel, subject=f"{subject} {n}", body=f"正文 {n}",
                                 created_at=clock.now() + timedelta(minutes=n)) for n in range(count)]
            db.session.add_all(rows)
            db.session.commit()
            return [row.id for row in rows]
    return write


def unread_in_header(page: str) -> str | None:
    match = re.search(r'<span class="count" id="unread-count"><span class="vh">未读 </span>([^<]+)</span>', page)
    return match.group(1) if match else None


def test_a_new_task_notifies_its_assignee_and_the_header_counts_it(client, sign_in, start_record, league):
    sign_in("zhang")
    assert unread_in_header(client.get("/").text) is None
    start_record(assignee="zhang")
    page = client.get("/").text
    assert unread_in_header(page) == "1"
    listing = client.get("/notifications").text
    assert "新的待办：记录活动" in listing and "1 条未读" in listing
    assert "2026-05-01 08:00" in listing  # Beijing time


def test_the_list_is_mine_newest_first_and_paged_by_id(client, sign_in, notify):
    ids = notify(count=35)
    notify(recipient="li", count=2, subject="别人的")
    notify(count=1, subject="短信", channel="sms")  # not an in-app notification
    sign_in("zhang")
    first = client.get("/notifications").text
    subjects = re.findall(r'<div class="subject">(通知 \d+)', first)
    assert subjects == [f"通知 {n}" for n in range(34, 4, -1)]  # 30, newest first
    assert "别人的" not in first and "短信" not in first
    older = re.search(r'<a href="([^"]+)" rel="next">更早的通知</a>', first).group(1)
    assert older == f"?before={ids[5]}"
    second = client.get("/notifications" + older).text
    assert re.findall(r'<div class="subject">(通知 \d+)', second) == [f"通知 {n}" for n in range(4, -1, -1)]
    assert "更早的通知</a>" not in second


def test_mark_one_and_all_as_read(app, client, sign_in, notify):
    ids = notify(count=3)
    sign_in("zhang")
    assert unread_in_header(client.get("/notifications").text) == "3"
    response = post(client, f"/notifications/{ids[1]}/read", {"next": "/notifications?unread=1"})
    assert response.status_code == 302 and response.headers["Location"] == "/notifications?unread=1"
    page = client.get("/notifications?unread=1").text
    assert unread_in_header(page) == "2"
    assert re.findall(r'<div class="subject">(通知 \d+)', page) == ["通知 2", "通知 0"]
    assert post(client, f"/notifications/{ids[1]}/read").status_code == 302  # read already: no harm

    response = post(client, "/notifications/read-all")
    assert response.status_code == 302
    page = client.get("/notifications").text
    assert unread_in_header(page) is None and "没有未读通知" in page and "已将 2 条通知标为已读" in page
    assert 'class="unread"' not in page and "全部标为已读" not in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)
                                 .where(Notification.read_at.is_(None))) == 0


def test_marking_needs_csrf_and_ones_own_notification(client, sign_in, notify):
    theirs = notify(recipient="li", count=1)[0]
    mine = notify(count=1)[0]
    sign_in("zhang")
    assert client.post(f"/notifications/{mine}/read").status_code == 400          # no CSRF token
    assert client.post("/notifications/read-all").status_code == 400
    refused = post(client, f"/notifications/{theirs}/read")
    assert refused.status_code == 404 and "通知" in refused.text                 # someone else's: not found
    assert unread_in_header(client.get("/").text) == "1"
    assert post(client, "/notifications/read-all", {"next": "https://evil.example/"}).headers["Location"] \
        == "/notifications"


def test_the_count_is_capped(client, sign_in, notify):
    notify(count=notification_centre.UNREAD_CAP + 5)
    sign_in("zhang")
    assert unread_in_header(client.get("/").text) == "99+"


def test_the_centre_needs_sign_in(client):
    assert client.get("/notifications").status_code == 302


def test_domain_functions(app, clock, notify):
    ids = notify(count=3)
    with app.app_context():
        session = db.session
        assert notification_centre.unread_count(session, "zhang") == 3
        assert notification_centre.unread_count(session, "zhang", cap=1) == 2  # counts no further than cap + 1
        assert notification_centre.mark_read(session, "zhang", ids[0], clock.now()) is True
        assert notification_centre.mark_read(session, "zhang", ids[0], clock.now()) is False
        assert [n.id for n in notification_centre.notifications(session, "zhang", unread_only=True)] == ids[:0:-1]
        assert notification_centre.mark_all_read(session, "zhang", clock.now()) == 2
        assert notification_centre.mark_all_read(session, "zhang", clock.now()) == 0
        session.commit()
