"""The coordinators' wish-pool board through the web: the pooled wishes of their level with age, origin and
deadline; claim, match a resource and fulfil; escalation by timer; each wish's history; who may see what."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from web.extensions import db

from .page_checks import engine_of
from .wish_journeys import (
    DESCRIPTION,
    POOL_FORM,
    REPLY_BEYOND,
    TITLE,
    assert_accessible_forms,
    pool_form,
    send,
    staff_client,
    wish_pooler,
    youth_client,
)

MINUTE = timedelta(minutes=1)


@pytest.fixture
def pooled(app, clock, league):
    """Post wishes as 小明 to 张伟, who declines each: returns a function making one, giving its pool task id."""
    return wish_pooler(app, clock)


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_the_coordinator_claims_matches_a_resource_and_fulfils(app, clock, pooled):
    task_id = pooled()
    coordinator = staff_client(app, "S_coord")
    board = page(coordinator, "/wish-pool/")
    assert_accessible_forms(board)
    assert TITLE in board and f"/wish-pool/{task_id}" in board
    assert "市南区团委心愿池" in board and "青年小明 · 团干部张伟（市南区团委）" in board
    assert "超出团干部个人能力范围" in board and "不到1天（05-01起）" in board
    assert "2026-05-15 08:00" in board  # due in 14 days, in Beijing time
    assert re.search(r"待认领 <strong>1</strong>", board)

    detail = page(coordinator, f"/wish-pool/{task_id}")
    assert DESCRIPTION in detail and REPLY_BEYOND["reply_text"] in detail and "认领这条心愿" in detail
    assert "对接资源，帮助实现" not in detail  # the form comes once it is claimed
    assert send(coordinator, f"/wish-pool/{task_id}/claim").status_code == 302
    claimed = page(coordinator, f"/wish-pool/{task_id}")
    assert_accessible_forms(claimed)
    assert "对接的资源" in claimed and 'name="donor"' in claimed and 'name="fulfilment"' in claimed
    assert "协调员市南协调员认领了这条心愿" in claimed
    assert TITLE in page(coordinator, "/wish-pool/?show=mine")
    assert TITLE not in page(coordinator, "/wish-pool/?show=unclaimed")

    no_resource = send(coordinator, f"/wish-pool/{task_id}/fulfil", {k: v for k, v in POOL_FORM.items() if k != "donor"})
    assert no_resource.status_code == 422 and "请修改标出的内容" in no_resource.get_data(as_text=True)
    short = send(coordinator, f"/wish-pool/{task_id}/fulfil", dict(POOL_FORM, fulfilment="送到了"))
    assert short.status_code == 422 and 'id="e-fulfilment"' in short.get_data(as_text=True)
    clock.advance(timedelta(days=2))
    assert send(coordinator, f"/wish-pool/{task_id}/fulfil", pool_form()).status_code == 302
    done = page(coordinator, f"/wish-pool/{task_id}")
    assert "这条心愿已不在市南区团委心愿池（已完成）" in done and "等待您确认" in done
    assert ("协调员市南协调员在市南区团委心愿池对接资源并实现心愿（爱心捐赠人：新华书店；资源：全套考研复习资料一套），"
            "等待青年确认") in done
    assert "2026-05-03 08:00" in done
    assert TITLE not in page(coordinator, "/wish-pool/")
    assert send(coordinator, f"/wish-pool/{task_id}/claim").status_code == 404


def test_a_coordinator_gives_a_wish_back_to_the_pool(app, clock, pooled):
    task_id = pooled()
    coordinator = staff_client(app, "S_coord")
    send(coordinator, f"/wish-pool/{task_id}/claim")
    assert send(coordinator, f"/wish-pool/{task_id}/unclaim").status_code == 302
    again = page(coordinator, f"/wish-pool/{task_id}")
    assert "认领这条心愿" in again and "协调员市南协调员退回，心愿回到市南区团委心愿池等待认领" in again


def test_who_may_see_the_board_and_a_wish(app, clock, pooled):
    task_id = pooled()
    jinan = staff_client(app, "J_coord")  # a coordinator outside the subtree
    assert TITLE not in page(jinan, "/wish-pool/") and TITLE not in page(jinan, "/wish-pool/?scope=subtree")
    assert page(jinan, f"/wish-pool/{task_id}", 403)
    assert send(jinan, f"/wish-pool/{task_id}/claim").status_code == 403
    assert "只有协调员可以查看心愿池" in page(staff_client(app, "zhang"), "/wish-pool/", 403)
    assert page(youth_client(app, "xiaohong"), f"/wish-pool/{task_id}", 403)
    province = staff_client(app, "P_coord")  # above it: sees it in the subtree view, not at its own level
    assert TITLE not in page(province, "/wish-pool/")
    assert TITLE in page(province, "/wish-pool/?scope=subtree")
    assert page(staff_client(app, "S_coord"), "/wish-pool/999999", 404)


def test_an_unfulfilled_wish_is_overdue_then_escalates_by_timer(app, clock, pooled):
    task_id = pooled()
    coordinator = staff_client(app, "S_coord")
    clock.advance(timedelta(days=14) + MINUTE)  # past the deadline, before the sweeper runs
    overdue = page(coordinator, "/wish-pool/?show=overdue")
    assert TITLE in overdue and '<span class="badge overdue">已逾期</span>' in overdue and "14天" in overdue
    with app.app_context():
        engine_of(app).run_due_timers(db.session)
    assert TITLE not in page(coordinator, "/wish-pool/")
    moved = page(coordinator, f"/wish-pool/{task_id}")
    assert "这条心愿已不在市南区团委心愿池" in moved and "您的心愿在团省委心愿池" in moved
    assert "市南区团委心愿池14天内未能实现，心愿上移到上一级心愿池" in moved
    province = staff_client(app, "P_coord")
    board = page(province, "/wish-pool/")
    # The city has no coordinator, so the city's pool is run by the province's (a new 14 days).
    assert TITLE in board and "由市南区团委上移" in board and "2026-05-29 08:01" in board


def test_the_board_is_paginated(app, clock, pooled):
    ids = [pooled(f"{TITLE}{n:02d}") for n in range(21)]
    coordinator = staff_client(app, "S_coord")
    first = page(coordinator, "/wish-pool/")
    assert f"{TITLE}00" in first and f"{TITLE}19" in first and f"{TITLE}20" not in first
    assert re.search(r"共 <strong>21</strong> 条", first)
    next_url = re.search(r'<a href="([^"]+)" rel="next">', first).group(1).replace("&amp;", "&")
    second = page(coordinator, "/wish-pool/" + next_url)
    assert f"{TITLE}20" in second and f"{TITLE}19" not in second and 'rel="next"' not in second
    assert f"/wish-pool/{ids[-1]}" in second
