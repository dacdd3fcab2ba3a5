"""The three main journeys in a real browser, at a phone and a desktop viewport, asserting what people see.

1. A cadre completes a task: a form error first, then correctly, and the diagram moves on.
2. An organiser launches a campaign, watches the launch reach 100 % and drills down its dashboard.
3. A youth posts a wish; the cadre declines it into the pool; a coordinator claims and fulfils it;
   the youth confirms and rates.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

pytest.importorskip("playwright", reason="the Python package playwright is missing: pip install -e '.[test]'")

from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.models import HumanTask

from .conftest import in_every_setting
from .sign_in import sign_in, sign_in_youth

pytestmark = [pytest.mark.browser, in_every_setting]


@pytest.fixture
def sign_in_sheet(tmp_path):
    """A small real photo to attach."""
    from PIL import Image
    path = tmp_path / "签到表.jpg"
    Image.new("RGB", (120, 80), (240, 240, 230)).save(path, "JPEG")
    return path


@pytest.fixture
def receipt(tmp_path):
    """A photo of the youth's signed receipt."""
    from PIL import Image
    path = tmp_path / "签收单.jpg"
    Image.new("RGB", (120, 80), (250, 245, 235)).save(path, "JPEG")
    return path


def diagram_element(page: Page, box_id: str, element_id: str):
    """The SVG group bpmn-js drew for ``element_id`` in the diagram box ``box_id``, once the diagram is drawn."""
    expect(page.locator(f"#{box_id}.drawn")).to_be_attached()
    return page.locator(f'#{box_id} .djs-element[data-element-id="{element_id}"]')


def assert_message_beside(page: Page, name: str) -> str:
    """The field ``name`` is marked invalid and its message sits right below it; returns the message."""
    field, message = page.locator(f"#f-{name}"), page.locator(f"#e-{name}")
    expect(message).to_be_visible()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", re.compile(rf"\be-{name}\b"))
    field_box, message_box = field.bounding_box(), message.bounding_box()
    gap = message_box["y"] - (field_box["y"] + field_box["height"])
    assert 0 <= gap < 80, f"the message of {name} is {gap:.0f}px away from its field"
    return message.inner_text()


# ---------------------------------------------------------------------------------- journey 1

def test_a_cadre_completes_a_task_after_fixing_a_form_error(browsing, live_server, screenshots, sign_in_sheet):
    shot = screenshots("cadre-task")
    live_server.run(lambda session, engine: engine.start(
        session, "activity_record", {"cadre_assignee": "zhang",
                                     "deadline": (live_server.clock.now() + timedelta(days=5)).isoformat()},
        organisation_id="qd-sn", actor="S_org"))
    page = browsing.new_page()
    sign_in(page, "zhang", "张伟")

    # My tasks: the activity to record, with its deadline.
    page.get_by_role("link", name="我的待办").click()
    expect(page.get_by_role("heading", name="我的待办")).to_be_visible()
    task_link = page.get_by_role("link", name="记录活动")
    expect(task_link).to_be_visible()
    expect(page.locator("table.tasks")).to_contain_text("2026-05-06")  # due in five days, Beijing time
    shot(page, "1-inbox")

    # The task: instructions, form, and the diagram with this step as the current one.
    task_link.click()
    expect(page.get_by_role("heading", name="记录活动", level=1)).to_be_visible()
    expect(diagram_element(page, "task-diagram", "Task_record")).to_have_class(re.compile(r"\bmarker-current\b"))
    expect(diagram_element(page, "task-diagram", "Task_verify")).not_to_have_class(re.compile(r"\bmarker-"))
    instance_href = page.get_by_role("link", name=re.compile(r"#\d+$")).first.get_attribute("href")
    shot(page, "2-task")

    # A first try with too short a description and no youth: the messages sit beside those fields.
    page.get_by_label("活动类别").select_option(label="讲一次团课")
    page.get_by_label("活动日期").fill("2026-04-28")
    page.get_by_label("地点").fill("市南区青年之家")
    page.get_by_label("参与青年人数").fill("0")
    page.get_by_label("活动过程").fill("讲了团课")
    page.locator("#f-evidence").set_input_files(str(sign_in_sheet))  # a photo of the sign-in sheet
    page.get_by_role("button", name="提交").click()
    expect(page.get_by_role("alert")).to_contain_text("请修改标出的内容后再提交")
    assert "请填写10–5000 个字" in assert_message_beside(page, "description")  # the rule, in Chinese first
    assert "请填写1–100000" in assert_message_beside(page, "youth_count")
    expect(page.get_by_label("地点")).to_have_value("市南区青年之家")  # what was right is kept
    expect(page.locator("#e-place")).to_have_count(0)
    expect(page.get_by_role("checkbox", name=re.compile("签到表.jpg"))).to_be_checked()  # stored: not chosen again
    shot(page, "3-form-error")

    # Corrected: the task is done and leaves my list.
    page.get_by_label("参与青年人数").fill("28")
    page.get_by_label("活动过程").fill("为社区团员青年讲了一堂主题团课，大家围绕青年志愿服务展开讨论。")
    page.get_by_role("button", name="提交").click()
    expect(page.locator(".flash")).to_contain_text("已完成「记录活动」")
    expect(page.get_by_text("暂无待办任务")).to_be_visible()
    shot(page, "4-done")

    # The process page: my step is done, and the diagram has moved on to the verification.
    page.goto(instance_href)
    expect(diagram_element(page, "instance-diagram", "Task_record")).to_have_class(re.compile(r"\bmarker-completed\b"))
    expect(diagram_element(page, "instance-diagram", "Task_verify")).to_have_class(re.compile(r"\bmarker-ready\b"))
    expect(page.locator(".marker-current")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("核实活动")
    expect(page.get_by_role("link", name="签到表.jpg")).to_be_visible()  # the evidence, with its link
    shot(page, "5-diagram-advanced")


# ---------------------------------------------------------------------------------- journey 2

REPORT = {"format": "sharing_session", "topic": "新时代青年的使命担当", "date": "2026-05-20", "place": "市南区青年之家",
          "youth_count": 35, "description": "与所联系的青年一起学习党的十九大报告，分组交流心得。",
          "evidence": ["sharing-1.jpg"]}


def test_an_organiser_launches_a_campaign_and_watches_its_dashboard(browsing, live_server, screenshots):
    shot = screenshots("campaign")
    page = browsing.new_page()
    sign_in(page, "Q_org", "青岛组织者")

    # Pick the process, then fill in the window, the subtree and the deadline.
    page.get_by_role("link", name="集中活动").click()
    page.get_by_role("link", name="发起集中活动").click()
    page.get_by_label("流程").select_option(label="十九大精神宣讲")
    page.get_by_role("button", name="选择流程").click()
    expect(page.get_by_role("heading", name="十九大精神宣讲")).to_be_visible()
    page.get_by_label("活动名称").fill("青岛市十九大精神宣讲")
    page.get_by_label("面向的组织（含下级）").fill("qd")
    page.get_by_label("开始时间").fill("2026-05-01")
    page.get_by_label("结束时间").fill("2026-12-31")
    page.get_by_label("截止时间", exact=False).first.fill("2026-11-30")
    shot(page, "1-form")
    page.get_by_role("button", name="下一步：核对对象数").click()

    # Before anything is created: how many instances the launch will start.
    expect(page.get_by_role("heading", name=re.compile("确认发起"))).to_be_visible()
    expect(page.locator("#target-count")).to_have_text("2")  # 张伟 and 李娜, the cadres under 青岛
    expect(page.locator("dl.data")).to_contain_text("青岛团市委")
    shot(page, "2-count")
    page.get_by_role("button", name="确认发起").click()

    # The launch progress bar reaches 100 %.
    expect(page.locator(".flash")).to_contain_text("活动已发起，共 2 个对象")
    bar = page.locator("#launch-bar")
    expect(bar).to_have_js_property("max", 2)
    expect(bar).to_have_js_property("value", 2)
    expect(page.locator("#launch-text")).to_contain_text("已创建 2 / 2 个流程实例（100%）")
    expect(page.locator("#campaign-status")).to_have_text("已发起")
    shot(page, "3-launched")

    # Meanwhile 张伟 records his lecture.
    def zhang_reports(session, engine):
        task = session.scalar(select(HumanTask).where(HumanTask.assignee == "zhang",
                                                      HumanTask.state.in_(HumanTask.OPEN_STATES)))
        engine.complete_task(session, task.id, REPORT, "zhang")
    live_server.run(zhang_reports)

    # The dashboard: one of two done, per organisation one level down.
    page.get_by_role("link", name="完成情况").click()
    expect(page.get_by_role("heading", name="青岛市十九大精神宣讲 · 完成情况")).to_be_visible()
    expect(page.locator("main")).to_contain_text("青岛团市委（含下级）：对象 2，已完成 1，进行中 1")
    row = page.locator("#by-organisation tr", has_text="市南区团委")
    expect(row).to_contain_text("1 / 2")
    expect(row).to_contain_text("50%")
    shot(page, "4-dashboard")

    # Drill down to 市南区团委 and its people.
    row.get_by_role("link", name="市南区团委").click()
    expect(page.get_by_role("navigation", name="组织层级")).to_contain_text("青岛团市委 › 市南区团委")
    people = page.locator("#people")
    expect(people.locator("tr", has_text="张伟")).to_contain_text("已完成")
    expect(people.locator("tr", has_text="李娜")).to_contain_text("开展并记录十九大精神宣讲")
    page.get_by_label("筛选", exact=True).select_option(label="已完成")
    page.get_by_role("button", name="筛选").click()
    expect(people.locator("tbody tr")).to_have_count(1)
    expect(people).to_contain_text("张伟")
    shot(page, "5-drill-down")


# ---------------------------------------------------------------------------------- journey 3

WISH_TITLE = "想要一套考研复习资料"


def test_a_youth_wish_goes_through_the_pool_to_fulfilment_and_is_confirmed(browsing, live_server, screenshots, receipt):
    shot = screenshots("wish")

    # 小明 posts a wish to 张伟, the cadre who contacts him.
    youth = browsing.new_page()
    sign_in_youth(youth, live_server, "13800000001")
    youth.goto("/youth/")
    expect(youth.get_by_role("heading", name="青年服务")).to_be_visible()
    youth.get_by_role("link", name="提一个微心愿").click()
    youth.get_by_label("交给哪位团干部").select_option(label="张伟（市南区团委）")
    youth.get_by_label("心愿标题").fill(WISH_TITLE)
    youth.get_by_label("心愿内容").fill("明年考研，家里买不起全套资料，想借或要一套。")
    shot(youth, "1-post")
    youth.get_by_role("button", name="提交心愿").click()
    expect(youth.locator(".flash")).to_contain_text("心愿已提交")
    expect(youth.locator("p.status")).to_contain_text("您的心愿已交给团干部张伟（市南区团委），等待回复")
    wish_url = youth.url
    shot(youth, "2-posted")

    # 张伟 cannot fulfil it himself and passes it to the wish pool.
    live_server.clock.advance(timedelta(hours=2))
    cadre = browsing.new_page()
    sign_in(cadre, "zhang", "张伟")
    cadre.get_by_role("link", name="回复微心愿").click()
    # The task page does not show the wish itself yet: its process page does, under 流程数据.
    cadre.get_by_role("link", name=re.compile(r"#\d+$")).first.click()
    expect(cadre.locator("dl.data").last).to_contain_text(WISH_TITLE)
    cadre.go_back()
    cadre.get_by_label("能否实现").select_option(label="超出个人能力范围，转入心愿池")
    cadre.get_by_label("回复青年").fill("这套资料我一时找不到，请团委心愿池帮忙。")
    cadre.get_by_role("button", name="提交").click()
    expect(cadre.locator(".flash")).to_contain_text("已完成")
    youth.goto(wish_url)
    expect(youth.locator("p.status")).to_contain_text("您的心愿在市南区团委心愿池")

    # The county's coordinator finds it on the board, claims it, matches a donor and fulfils it.
    live_server.clock.advance(timedelta(hours=20))
    coordinator = browsing.new_page()
    sign_in(coordinator, "S_coord", "市南协调员")
    coordinator.goto("/wish-pool/")
    card = coordinator.locator("ul.pool li", has_text=WISH_TITLE)
    expect(card).to_contain_text("青年小明 · 团干部张伟（市南区团委）")
    expect(card).to_contain_text("超出团干部个人能力范围")
    shot(coordinator, "3-pool-board")
    card.get_by_role("button", name=f"认领「{WISH_TITLE}」").click()
    expect(coordinator.locator(".flash")).to_contain_text("已认领")
    coordinator.get_by_label("爱心捐赠人").fill("新华书店")
    coordinator.get_by_role("textbox", name=re.compile("^对接的资源")).fill("全套考研复习资料一套")
    coordinator.get_by_label("实现日期").fill("2026-05-02")
    coordinator.get_by_label("实现过程").fill("协调新华书店捐赠全套资料，并当面送到青年手中。")
    coordinator.locator("#f-evidence").set_input_files(str(receipt))
    shot(coordinator, "4-fulfil")
    coordinator.get_by_role("button", name="心愿已实现，请青年确认").click()
    expect(coordinator.locator(".flash")).to_contain_text("心愿已实现")
    expect(coordinator.locator("ol.timeline")).to_contain_text("市南协调员")
    expect(coordinator.get_by_role("link", name="签收单.jpg")).to_be_visible()  # the evidence, with its link

    # 小明 sees it fulfilled, confirms and rates it.
    youth.goto(wish_url)
    expect(youth.locator("p.status")).to_contain_text("已由市南区团委心愿池（协调员市南协调员）实现，等待您确认")
    expect(youth.get_by_role("link", name="签收单.jpg")).to_be_visible()  # how it was fulfilled
    shot(youth, "5-to-confirm")
    youth.get_by_label("★★★★★ 非常满意").check()
    youth.get_by_label("留言").fill("谢谢团委！")
    youth.get_by_role("button", name="确认已实现").click()
    expect(youth.locator(".flash")).to_contain_text("感谢确认")
    expect(youth.locator("p.status")).to_contain_text("您的心愿已实现，您已确认")
    expect(youth.locator("ol.timeline")).to_contain_text("青年小明确认心愿已实现，评价5星")
    expect(youth.get_by_text("撤回这个心愿")).to_have_count(0)
    shot(youth, "6-confirmed")
