"""The instance page: diagram and legend, the audit trail in Beijing time, the data for those allowed,
and an admin's cancel (reason, confirmation, CSRF) and retry of a failed step."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.models import AuditEvent, ProcessInstance
from web.extensions import db

from .conftest import GOOD_RECORD
from .page_checks import diagram_of, engine_of, open_task_id, post

# An hour after its start a script needs a value nobody gave: the timer sweep fails and the instance errs.
FAILING_STEP_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_fail"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="failing_step" name="Failing step" isExecutable="true">
    <bpmn:startEvent id="Start_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="Timer_wait" name="wait an hour">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="Script_compute" name="compute">
      <bpmn:incoming>Flow_2</bpmn:incoming><bpmn:outgoing>Flow_3</bpmn:outgoing>
      <bpmn:script>total = count + 1</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>Flow_3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Timer_wait" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Timer_wait" targetRef="Script_compute" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Script_compute" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def record(app, start_record, league):
    """An activity record of qd-sn assigned to zhang; returns its instance id."""
    return start_record(days=5, org="qd-sn", assignee="zhang")


@pytest.fixture
def failed_instance(app, clock, league):
    """An instance of qd-sn whose timer step failed (status "error"); returns its id."""
    engine = engine_of(app)
    with app.app_context():
        engine.deploy(db.session, FAILING_STEP_BPMN, "failing_step.bpmn")
        instance_id = engine.start(db.session, "failing_step", {}, organisation_id="qd-sn", actor="S_org").id
        db.session.commit()
    clock.advance(timedelta(hours=1, minutes=1))
    with app.app_context():
        engine.run_due_timers(db.session)
        assert db.session.get(ProcessInstance, instance_id).status == "error"
    return instance_id


def status_of(app, instance_id: int) -> str:
    with app.app_context():
        return db.session.scalar(select(ProcessInstance.status).where(ProcessInstance.id == instance_id))


def test_the_diagram_marks_done_current_and_waiting_elements_with_a_legend(client, sign_in, record):
    sign_in("zhang")
    page = client.get(f"/instances/{record}").text
    diagram = diagram_of(page, "instance-diagram")
    assert diagram["markers"]["completed"] == ["StartEvent_1"]
    assert diagram["markers"]["ready"] == ["Task_record"]
    assert set(diagram["markers"]["waiting"]) == {"Timer_deadline", "Timer_remind"}
    assert "BPMNDiagram" in diagram["xml"]
    for kind, words in [("completed", "已完成"), ("ready", "进行中"), ("waiting", "等待中")]:
        assert f'<span class="swatch {kind}" aria-hidden="true"></span>{words}' in page
    assert '<span class="swatch cancelled"' not in page  # the legend shows only what is on the diagram
    assert "进行中：记录活动" in page  # the text alternative for screen readers
    assert "/static/vendor/bpmn-js/bpmn-viewer.production.min.js" in page


def test_the_audit_trail_is_a_timeline_in_beijing_time(app, client, clock, sign_in, record):
    sign_in("zhang")
    clock.advance(timedelta(hours=3))
    post(client, f"/tasks/{open_task_id(app, record)}/complete", GOOD_RECORD)
    page = client.get(f"/instances/{record}").text
    timeline = page[page.index('<ol class="timeline">'):]
    assert re.search(r'datetime="2026-05-01T00:00:00\+00:00">2026-05-01 08:00:00</time>\s*<strong>发起流程</strong> · test',
                     timeline)
    assert re.search(r"2026-05-01 11:00:00</time>\s*<strong>完成</strong>「记录活动」 · zhang", timeline)
    assert "生成待办</strong>「核实活动」" in timeline
    assert timeline.index("发起流程") < timeline.index("完成</strong>「记录活动」") < timeline.index("「核实活动」")


@pytest.mark.parametrize("who,status,sees_data", [
    ("zhang", 200, True),      # the participant
    ("S_org", 200, True),      # organiser over qd-sn
    ("Q_org", 200, True),      # organiser of the city above
    ("P_admin", 200, True),    # admin of the province
    ("S_insp", 200, False),    # inspector over qd-sn: the steps, not the data
    ("li", 403, False),        # a cadre below, not a participant
    ("wang", 403, False),
    ("J_org", 403, False),     # organiser of another city
])
def test_who_sees_the_instance_and_its_data(client, sign_in, record, who, status, sees_data):
    sign_in(who)
    response = client.get(f"/instances/{record}")
    assert response.status_code == status
    page = response.text
    if status == 403:
        assert "无权查看流程实例" in page and "instance-diagram" not in page
        return
    assert ("<h2>流程数据</h2>" in page) == sees_data
    assert ("cadre_assignee" in page) == sees_data   # neither in the data list nor in the timeline's details
    assert ("<summary>详情</summary>" in page) == sees_data
    assert "办理记录" in page and "instance-diagram" in page


def test_a_cancelled_instance_says_so_and_why(app, client, sign_in, league, start_record):
    instance_id = start_record(assignee="zhang")
    with app.app_context():
        engine_of(app).cancel(db.session, instance_id, "P_admin", "测试")
        db.session.commit()
    sign_in("zhang")
    page = client.get(f"/instances/{instance_id}").text
    assert "已取消" in page and "流程取消" in page and "测试" in page


def test_the_instance_page_needs_sign_in_and_an_unknown_one_is_404(client, sign_in, record):
    assert client.get(f"/instances/{record}").status_code == 302
    sign_in("zhang")
    missing = client.get("/instances/987654")
    assert missing.status_code == 404 and "出错了（404）" in missing.text


def test_only_an_admin_over_the_instance_sees_the_cancel_form(client, sign_in, record):
    sign_in("S_org")
    assert "取消流程</button>" not in client.get(f"/instances/{record}").text
    refused = post(client, f"/instances/{record}/cancel", {"reason": "不需要了", "confirm": "yes"})
    assert refused.status_code == 403 and "只有该组织及上级的管理员" in refused.text


def test_an_admin_cancels_with_a_reason_and_a_confirmation(app, client, sign_in, record):
    sign_in("P_admin")
    page = client.get(f"/instances/{record}").text
    assert f'action="/instances/{record}/cancel"' in page and 'name="confirm"' in page
    assert '<label for="cancel-reason">' in page

    unconfirmed = post(client, f"/instances/{record}/cancel", {"reason": "重复发起"})
    assert unconfirmed.status_code == 422 and "请勾选确认" in unconfirmed.text
    no_reason = post(client, f"/instances/{record}/cancel", {"reason": " ", "confirm": "yes"})
    assert no_reason.status_code == 422 and "请写明取消原因" in no_reason.text
    no_csrf = client.post(f"/instances/{record}/cancel", data={"reason": "重复发起", "confirm": "yes"})
    assert no_csrf.status_code == 400
    assert status_of(app, record) == "running"

    done = post(client, f"/instances/{record}/cancel", {"reason": "重复发起", "confirm": "yes"})
    assert done.status_code == 302
    assert status_of(app, record) == "cancelled"
    page = client.get(f"/instances/{record}").text
    assert f"流程 #{record} 已取消" in page and "<strong>流程取消</strong>" in page and "重复发起" in page
    assert "取消流程</button>" not in page
    again = post(client, f"/instances/{record}/cancel", {"reason": "再取消", "confirm": "yes"})
    assert again.status_code == 409


def test_an_admin_retries_a_failed_step(app, client, clock, sign_in, failed_instance):
    sign_in("P_admin")
    page = client.get(f"/instances/{failed_instance}").text
    assert "出错暂停" in page and "自动步骤出错" in page and "count" in page  # the reason, for the admin
    assert "重新执行失败的步骤" in page
    assert post(client, f"/instances/{failed_instance}/retry").status_code == 302
    assert status_of(app, failed_instance) == "running"
    with app.app_context():
        kinds = list(db.session.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == failed_instance)
                                        .order_by(AuditEvent.id)))
        assert kinds[-2:] == ["error", "retried"]
        # The failed step is due again: the next sweep runs it (and here it fails again, with its reason).
        assert engine_of(app).run_due_timers(db.session) == 1
    assert status_of(app, failed_instance) == "error"
    again = client.get(f"/instances/{failed_instance}").text
    assert "<strong>重新执行</strong> · P_admin" in again


def test_retry_is_for_admins_and_for_failed_instances_only(app, client, sign_in, failed_instance, record):
    sign_in("S_org")
    page = client.get(f"/instances/{failed_instance}").text
    assert "出错暂停" in page and "重新执行失败的步骤" not in page
    assert post(client, f"/instances/{failed_instance}/retry").status_code == 403
    assert status_of(app, failed_instance) == "error"
    client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)})
    sign_in("P_admin")
    assert post(client, f"/instances/{record}/retry").status_code == 409  # a running instance has nothing to retry


def test_an_admin_may_cancel_a_failed_instance(app, client, sign_in, failed_instance):
    sign_in("P_admin")
    assert "取消流程</button>" in client.get(f"/instances/{failed_instance}").text
    assert post(client, f"/instances/{failed_instance}/cancel", {"reason": "脚本有误", "confirm": "yes"}).status_code \
        == 302
    assert status_of(app, failed_instance) == "cancelled"
