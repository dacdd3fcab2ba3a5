"""我的联系青年 (/contacts/): a cadre's contacts with tags and binding, totals, points, filters, pages and rights."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.league import build_league
from web import contacts as contact_pages
from web.extensions import db
from workflows.contact_points import award_contact_points
from workflows.models import Contact, Youth
from workflows.points import award

from .wish_journeys import cadre_ids, staff_client, youth_client


@pytest.fixture
def league_with_contacts(app, clock):
    """The test league; 张伟 contacts 小明 (tags complete) and 小红 (no industry), plus five youth of ours:
    two complete and bound, three without an occupation; and 5 activity points (one star)."""
    with app.app_context():
        league = build_league(db.session, clock.now())
        zhang = league.cadres["zhang"]
        for number in range(1, 6):
            complete = number <= 2
            youth = Youth(name=f"青年{number}", phone=f"1390000000{number}", occupation="教师" if complete else None,
                          industry="教育", bound_at=clock.now() if complete else None)
            db.session.add(youth)
            db.session.flush()
            db.session.add(Contact(cadre_id=zhang.id, youth_id=youth.id, since=clock.now() + timedelta(days=number)))
        award_contact_points(db.session, clock.now())
        for number in range(5):
            award(db.session, zhang, "activities", f"activity:{number}", clock.now(), "activity", str(number))
        db.session.commit()
    return cadre_ids(app)


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def names(html: str) -> list[str]:
    """The youth listed on a contacts page, in order."""
    return re.findall(r'<td class="task-name">([^<]+?) <span class="muted">', html)


def test_a_cadre_sees_each_contact_with_tags_binding_and_the_totals(app, league_with_contacts):
    client = staff_client(app, "zhang")
    html = page(client, "/contacts/")
    assert "我的联系青年" in html and 'href="/contacts/"' in html  # in the header's menu
    assert names(html) == ["小明", "小红", "青年1", "青年2", "青年3", "青年4", "青年5"]
    assert "138****0001" in html and "13800000001" not in html  # phones masked
    row = re.search(r'<tr class="contact" id="contact-\d+">\s*<td class="task-name">小红.*?</tr>', html, re.S).group(0)
    assert "工人" in row and "行业：<strong>未填</strong>" in row and "标签不全" in row and "未绑定" in row
    row = re.search(r'<td class="task-name">青年1.*?</tr>', html, re.S).group(0)
    assert "标签齐全" in row and "已绑定" in row and "名册登记" in row
    figures = {key: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", value)).strip() for key, value in
               re.findall(r'<li id="figure-(\w+)">(.*?)</li>', html, re.S)}
    assert figures["contacts"].startswith("联系青年 / 目标 7 / 100") and "计入目标的 3 人" in figures["contacts"]
    assert "标签齐全 3" in figures["complete"] and "标签不全 4 人" in figures["complete"]
    assert "已绑定手机端 2" in figures["bound"] and "未绑定 5 人" in figures["bound"]
    # 5 activities (5 points) + 3 complete contacts (0.3) + 2 bound youth (0.2), full-time rules: one star
    assert "5.50" in figures["points"] and "0钻1星" in figures["points"]
    assert 'href="/points/c-zhang"' in html and 'href="/assessment/organisations/qd-sn/cadres?scope=own"' in html


def test_the_filters_keep_the_incomplete_or_the_unbound(app, league_with_contacts):
    client = staff_client(app, "zhang")
    assert names(page(client, "/contacts/?incomplete=1")) == ["小红", "青年3", "青年4", "青年5"]
    assert names(page(client, "/contacts/?unbound=1")) == ["小明", "小红", "青年3", "青年4", "青年5"]
    html = page(client, "/contacts/?incomplete=1&unbound=1")
    assert names(html) == ["小红", "青年3", "青年4", "青年5"] and "符合条件的联系青年共 4 人" in html
    assert 'name="incomplete" value="1" checked' in html and "清除筛选" in html


def test_the_list_is_paginated_and_the_filters_stay_on_the_pages(app, league_with_contacts, monkeypatch):
    monkeypatch.setattr(contact_pages, "PAGE_SIZE", 3)
    client = staff_client(app, "zhang")
    html = page(client, "/contacts/")
    assert names(html) == ["小明", "小红", "青年1"] and "第 1 / 3 页" in html and 'href="?page=2"' in html
    assert names(page(client, "/contacts/?page=3")) == ["青年5"]
    html = page(client, "/contacts/?incomplete=1&page=2")
    assert names(html) == ["青年5"] and 'href="?page=1&amp;incomplete=1"' in html and 'rel="next"' not in html
    assert names(page(client, "/contacts/?page=99")) == []  # past the end: an empty page, no error


def test_binding_shows_once_the_youth_signs_in_on_the_mobile_client(app, league_with_contacts):
    youth_client(app, "xiaoming")
    html = page(staff_client(app, "zhang"), "/contacts/")
    row = re.search(r'<td class="task-name">小明.*?</tr>', html, re.S).group(0)
    assert "已绑定" in row and "未绑定" not in row


def test_an_organiser_of_the_subtree_reads_a_cadres_list(app, league_with_contacts):
    ids = league_with_contacts
    for organiser in ("S_org", "Q_org", "P_org", "P_admin"):
        html = page(staff_client(app, organiser), f"/contacts/cadre/{ids['zhang']}")
        assert "张伟的联系青年" in html and "只读" in html and len(names(html)) == 7
        assert "<form method=\"post\"" not in html.split('<main id="content">')[1]  # nothing to change here
    assert "我的联系青年" not in page(staff_client(app, "S_org"), "/")  # not a cadre: not in the menu


def test_others_may_not_see_a_cadres_contacts(app, league_with_contacts):
    ids = league_with_contacts
    for username in ("J_org", "S_coord", "S_insp", "li"):  # an organiser elsewhere, other roles, another cadre
        page(staff_client(app, username), f"/contacts/cadre/{ids['zhang']}", 403)
    page(staff_client(app, "S_org"), f"/contacts/cadre/{ids['wang']}", 403)  # 济南's cadre
    page(staff_client(app, "S_org"), "/contacts/", 403)  # not a cadre
    page(staff_client(app, "S_org"), "/contacts/cadre/999999", 404)
    youth = youth_client(app, "xiaoming")
    page(youth, "/contacts/", 403)
    page(youth, f"/contacts/cadre/{ids['zhang']}", 403)
    anonymous = app.test_client().get("/contacts/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    # A cadre asking for their own list by id gets their own page.
    response = staff_client(app, "zhang").get(f"/contacts/cadre/{ids['zhang']}?unbound=1")
    assert response.status_code == 302 and response.headers["Location"] == "/contacts/?unbound=1"


def test_a_cadre_without_contacts_is_told_where_they_come_from(app, league_with_contacts):
    html = page(staff_client(app, "wang"), "/contacts/")
    assert 'id="no-contacts"' in html and "名册导入" in html and "0 / 100" in html
