"""The inbox ("my tasks"): urgency order, overdue and due-soon badges, filters, pagination, and the
one query that merges every way a task reaches a person."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

import web.main
from engine.models import HumanTask
from web.extensions import db
from workflows.inbox import MAX_OFFSET, inbox, urgency
from workflows.roles import load_actor

from .page_checks import PLAIN_TASK_BPMN, engine_of


@pytest.fixture
def plain_task(app, league):
    """Start a ``plain_task`` instance (no deadline) assigned to ``assignee``; returns its id."""
    engine = engine_of(app)
    with app.app_context():
        engine.deploy(db.session, PLAIN_TASK_BPMN, "plain_task.bpmn")
        db.session.commit()

    def start(assignee: str = "zhang", org: str = "qd-sn") -> int:
        with app.app_context():
            instance = engine.start(db.session, "plain_task", {"cadre_assignee": assignee}, organisation_id=org)
            db.session.commit()
            return instance.id
    return start


def rows(page: str) -> list[int]:
    """Instance ids of the task rows, in page order."""
    return [int(i) for i in re.findall(r" #(\d+)</td>", page)]


def badge_of(page: str, instance_id: int) -> str | None:
    row = re.search(rf" #{instance_id}</td>.*?</tr>", page, re.DOTALL).group(0)
    for word in ("已逾期", "即将到期"):
        if word in row:
            return word
    return None


def test_tasks_come_overdue_first_then_soonest_then_without_deadline(client, clock, sign_in, start_record,
                                                                      plain_task):
    no_deadline = plain_task()
    later = start_record(days=10, assignee="zhang")
    overdue = start_record(days=1, assignee="zhang")
    soon = start_record(days=3, assignee="zhang")
    open_cadre_task = start_record(days=4, assignee=None)  # offered to every cadre of qd-sn, zhang included
    clock.advance(timedelta(days=2))
    sign_in("zhang")
    page = client.get("/").text
    assert rows(page) == [overdue, soon, open_cadre_task, later, no_deadline]
    assert badge_of(page, overdue) == "已逾期"
    assert badge_of(page, soon) == "即将到期"             # due in a day
    assert badge_of(page, open_cadre_task) == "即将到期"  # its reminder (2 days before) has passed
    assert badge_of(page, later) is None and badge_of(page, no_deadline) is None
    assert '<td data-label="截止" class="overdue">' in page
    assert "2026-05-02 08:00" in page  # the overdue deadline in Beijing time


def test_urgency_rules(app, clock, start_record, league):
    instance_id = start_record(days=5, assignee="zhang")
    with app.app_context():
        task = db.session.scalar(select(HumanTask).where(HumanTask.instance_id == instance_id))
        now = clock.now()
        assert urgency(task, now) is None
        assert urgency(task, now + timedelta(days=3, seconds=1)) == "due_soon"   # remind_at passed
        assert urgency(task, now + timedelta(days=5)) == "overdue"
        task.remind_at = None
        assert urgency(task, now + timedelta(days=3, hours=1)) == "due_soon"     # within two days
        db.session.rollback()


def test_filter_by_process_keeps_the_filter_in_the_pager(client, monkeypatch, sign_in, start_record, plain_task):
    monkeypatch.setattr(web.main, "PAGE_SIZE", 2)
    records = [start_record(days=d, assignee="zhang") for d in (1, 2, 3)]
    plain = plain_task()
    sign_in("zhang")
    page = client.get("/?process=activity_record").text
    assert rows(page) == records[:2]
    assert 'href="?page=2&amp;process=activity_record"' in page
    assert '<option value="activity_record" selected>' in page and "清除筛选" in page
    assert rows(client.get("/?page=2&process=activity_record").text) == records[2:]
    assert rows(client.get("/?process=plain_task").text) == [plain]
    empty = client.get("/?process=no_such_process").text
    assert rows(empty) == [] and "没有符合筛选条件的待办任务" in empty


def test_filter_by_campaign(app, client, sign_in, start_record, league):
    campaigns = pytest.importorskip("workflows.campaigns")
    in_campaign, outside = start_record(assignee="zhang"), start_record(assignee="zhang")
    with app.app_context():
        from workflows.models import Organisation
        definition = engine_of(app).latest_definition(db.session, "activity_record")
        org = db.session.scalar(select(Organisation).where(Organisation.code == "qd-sn"))
        now = definition.deployed_at
        campaign = campaigns.Campaign(process_id="activity_record", definition_id=definition.id, title="五月集中活动",
                                      window_start=now, window_end=now + timedelta(days=30), organisation_id=org.id,
                                      target_kind="cadre", parameters={}, launched_by="S_org", status="launched",
                                      created_at=now)
        db.session.add(campaign)
        db.session.flush()
        db.session.add(campaigns.CampaignTarget(campaign_id=campaign.id, target_key="cadre:1", organisation_id=org.id,
                                                chunk=0, instance_id=in_campaign))
        db.session.commit()
        campaign_id = campaign.id
    sign_in("zhang")
    page = client.get("/").text
    assert f'<option value="{campaign_id}" >五月集中活动</option>' in page  # offered: one of my tasks is in it
    assert set(rows(page)) == {in_campaign, outside}
    filtered = client.get(f"/?campaign={campaign_id}").text
    assert rows(filtered) == [in_campaign] and f'<option value="{campaign_id}" selected>' in filtered
    assert rows(client.get(f"/?campaign={campaign_id + 99}").text) == []


def test_pagination_is_capped_deep_down(client, monkeypatch, sign_in, start_record, league):
    monkeypatch.setattr(web.main, "PAGE_SIZE", 2)
    start_record(assignee="zhang")
    sign_in("zhang")
    response = client.get("/?page=999999999")
    assert response.status_code == 200 and "暂无待办任务" in response.text
    assert f"第 {MAX_OFFSET // 2 + 1} 页" in response.text


def test_one_query_merges_assigned_and_offered_tasks_by_urgency(app, clock, start_record, plain_task):
    # li (a cadre of qd-sn-gw) gets: two tasks assigned to him, and open cadre tasks of qd-sn above him.
    mine_late = start_record(days=9, assignee="li")
    offered_soon = start_record(days=2, assignee=None)
    mine_soon = start_record(days=3, assignee="li")
    offered_late = start_record(days=8, assignee=None)
    plain = plain_task(assignee="li")
    elsewhere = start_record(days=1, assignee=None, org="jn-lx")  # not offered to li
    with app.app_context():
        li = load_actor(db.session, "li")
        ids = [task.instance_id for task in inbox(db.session, li)]
        assert ids == [offered_soon, mine_soon, offered_late, mine_late, plain]
        assert elsewhere not in ids
        pages = [[t.instance_id for t in inbox(db.session, li, limit=2, offset=offset)] for offset in (0, 2, 4)]
        assert pages == [ids[:2], ids[2:4], ids[4:]]
        assert [t.instance_id for t in inbox(db.session, li, process_id="plain_task")] == [plain]
        # A staff role's offered tasks: the inspector sees the verify tasks of qd-sn once records are done.
        assert inbox(db.session, load_actor(db.session, "S_insp")) == []


def test_the_inbox_needs_sign_in(client):
    response = client.get("/?process=activity_record")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
