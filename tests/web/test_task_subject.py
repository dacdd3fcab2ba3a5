"""The task page shows what a task replies to: the youth's micro-wish, or the youth's question.

And only to the people who may read what the youth wrote: who holds or is offered the task, or may
read the instance's data (an inspector who merely oversees the county sees the task, not the wish).
"""
from __future__ import annotations

import re

import pytest

from engine.models import ProcessInstance
from web.extensions import db
from workflows.task_subjects import wish_stage
from workflows.wishes import wish_status

from .page_checks import engine_of, open_task_id
from .wish_journeys import (DESCRIPTION, REPLY_BEYOND, TITLE, cadre_ids, deploy_wish_processes,
                            location_key, pool_form, send, staff_client, youth_client)

QUESTION = "暑期有哪些志愿服务岗位？"
ANSWER = "市南区团委暑期有“社区小管家”岗位，可在团区委公众号报名。"


@pytest.fixture
def portal(app, clock, league):
    deploy_wish_processes(app, clock)
    return cadre_ids(app)


def instance_of(app, key: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(ProcessInstance.id).where(ProcessInstance.business_key == key))


def subject_of(page: str) -> str:
    """The text of the page's subject box ("" when there is none)."""
    found = re.search(r'<section class="card" id="task-subject".*?</section>', page, re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0))) if found else ""


def test_the_reply_task_shows_the_wish_its_youth_when_and_its_history(app, portal):
    ming = youth_client(app, "xiaoming")
    key = location_key(send(ming, "/youth/wishes/new", {"cadre_id": str(portal["zhang"]), "title": TITLE,
                                                         "description": DESCRIPTION}))
    task_id = open_task_id(app, instance_of(app, key))
    zhang = staff_client(app, "zhang")
    page = zhang.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    subject = subject_of(page.text)
    assert "青年的微心愿" in subject and TITLE in subject and DESCRIPTION in subject
    assert "小明 于 2026-05-01" in subject               # the youth's display name and when (Beijing time)
    assert "状态：等待团干部回复" in subject
    assert f"青年小明提出微心愿「{TITLE}」" in subject and "心愿交给团干部张伟，等待回复" in subject
    assert "13800000001" not in page.text                # the phone number is never shown

    # Replying keeps the wish on the next task's page, with the reply in its history.
    done = send(zhang, f"/tasks/{task_id}/complete", {"reply_decision": "will_fulfil",
                                                      "reply_text": "我来帮你借一套，下周给你。"})
    assert done.status_code == 302
    fulfil = open_task_id(app, instance_of(app, key))
    subject = subject_of(zhang.get(f"/tasks/{fulfil}").text)
    assert TITLE in subject and "状态：团干部正在帮助实现" in subject
    assert "团干部张伟答应帮助实现：“我来帮你借一套，下周给你。”" in subject


def test_the_pool_task_shows_the_wish_and_the_stage_follows_the_wish(app, portal):
    ming = youth_client(app, "xiaoming")
    key = location_key(send(ming, "/youth/wishes/new", {"cadre_id": str(portal["zhang"]), "title": TITLE,
                                                         "description": DESCRIPTION}))
    wish = instance_of(app, key)

    def stages() -> tuple[str, str]:
        with app.app_context():  # the task page's stage is the one the youth's status page uses
            return wish_stage(db.session, db.session.get(ProcessInstance, wish)), wish_status(db.session, key).stage

    assert stages() == ("cadre_reply", "cadre_reply")
    assert send(staff_client(app, "zhang"), f"/tasks/{open_task_id(app, wish)}/complete", REPLY_BEYOND).status_code == 302
    assert stages() == ("pool", "pool")
    coordinator = staff_client(app, "S_coord")
    pool_task = open_task_id(app, wish)
    subject = subject_of(coordinator.get(f"/tasks/{pool_task}").text)
    assert TITLE in subject and "状态：在心愿池中" in subject and "回复超出个人能力范围，心愿转入心愿池" in subject
    assert send(coordinator, f"/wish-pool/{pool_task}/claim").status_code == 302
    assert send(coordinator, f"/wish-pool/{pool_task}/fulfil", pool_form()).status_code == 302
    assert stages() == ("awaiting_confirmation", "awaiting_confirmation")
    assert "状态：已实现，等待青年确认" in subject_of(coordinator.get(f"/tasks/{pool_task}").text)
    assert send(ming, f"/youth/wishes/{key}/confirm", {"rating": "5"}).status_code == 302
    assert stages() == ("confirmed", "confirmed")


def test_the_answer_task_shows_the_question(app, portal):
    ming = youth_client(app, "xiaoming")
    key = location_key(send(ming, "/youth/questions/new", {"to": f"cadre:{portal['zhang']}", "question": QUESTION}))
    task_id = open_task_id(app, instance_of(app, key))
    zhang = staff_client(app, "zhang")
    subject = subject_of(zhang.get(f"/tasks/{task_id}").text)
    assert "青年的提问" in subject and QUESTION in subject and "小明 于 2026-05-01" in subject
    assert "状态：等待团干部回答" in subject and "回答" in subject and ANSWER not in subject
    with app.app_context():
        engine_of(app).complete_task(db.session, task_id, {"answer": ANSWER}, "zhang")
        db.session.commit()
    done = subject_of(zhang.get(f"/tasks/{task_id}").text)  # the completed task shows the answer given
    assert QUESTION in done and ANSWER in done and "张伟" in done and "已回答，等待青年评价" in done


def test_an_open_question_is_shown_to_the_cadres_it_is_offered_to(app, portal):
    ming = youth_client(app, "xiaoming")
    key = location_key(send(ming, "/youth/questions/new", {"to": "area:qd-sn", "question": QUESTION}))
    task_id = open_task_id(app, instance_of(app, key))
    subject = subject_of(staff_client(app, "li").get(f"/tasks/{task_id}").text)  # offered, not yet claimed
    assert QUESTION in subject and "发布到“英雄帖”专区" in subject


def test_overseeing_the_county_shows_the_task_but_not_what_the_youth_wrote(app, portal):
    ming = youth_client(app, "xiaoming")
    key = location_key(send(ming, "/youth/wishes/new", {"cadre_id": str(portal["zhang"]), "title": TITLE,
                                                         "description": DESCRIPTION}))
    task_id = open_task_id(app, instance_of(app, key))
    inspector = staff_client(app, "S_insp").get(f"/tasks/{task_id}")
    assert inspector.status_code == 200 and subject_of(inspector.text) == "" and DESCRIPTION not in inspector.text
    organiser = staff_client(app, "S_org").get(f"/tasks/{task_id}")  # may read the instance's data
    assert TITLE in subject_of(organiser.text)


def test_other_tasks_have_no_subject_box(client, sign_in, start_record, league, app):
    instance_id = start_record(days=5, org="qd-sn", assignee="zhang")
    sign_in("zhang")
    page = client.get(f"/tasks/{open_task_id(app, instance_id)}").text
    assert 'id="task-subject"' not in page
