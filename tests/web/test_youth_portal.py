"""The youth portal through the web, as a young person on a phone: sign in with a code, post a wish or a
question to a cadre one knows, follow it in plain words, confirm and rate, withdraw; and what others may not do."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine.models import ProcessInstance
from web.extensions import db

from .page_checks import engine_of, open_task_id
from .wish_journeys import (
    DESCRIPTION,
    REPLY_BEYOND,
    TITLE,
    assert_accessible_forms,
    cadre_ids,
    deploy_wish_processes,
    location_key,
    pool_form,
    send,
    staff_client,
    youth_client,
)

ANSWER = "市南区团委暑期有“社区小管家”岗位，可在团区委公众号报名。"


@pytest.fixture
def portal(app, clock, league):
    """Both processes deployed; returns the cadres' ids by user name."""
    deploy_wish_processes(app, clock)
    return cadre_ids(app)


def instance_id(app, key: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(ProcessInstance.id).where(ProcessInstance.business_key == key))


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_a_youth_posts_a_wish_follows_it_through_the_pool_and_confirms(app, clock, portal):
    ming = youth_client(app, "xiaoming")
    home = page(ming, "/youth/")
    assert "提一个微心愿" in home and "还没有提过微心愿" in home
    form = page(ming, "/youth/wishes/new")
    assert_accessible_forms(form)
    assert f'value="{portal["zhang"]}"' in form and "张伟（市南区团委）" in form
    assert f'value="{portal["wang"]}"' not in form  # only the cadres who contact me

    refused = send(ming, "/youth/wishes/new", {"cadre_id": str(portal["zhang"]), "title": "书",
                                               "description": ""})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "心愿标题请填写2–100个字" in text and "心愿内容请填写2–2000个字" in text and 'aria-invalid="true"' in text
    stranger = send(ming, "/youth/wishes/new", {"cadre_id": str(portal["wang"]), "title": TITLE,
                                                "description": DESCRIPTION})
    assert stranger.status_code == 403 and "联系你" in stranger.get_data(as_text=True)

    posted = send(ming, "/youth/wishes/new", {"cadre_id": str(portal["zhang"]), "title": TITLE,
                                              "description": DESCRIPTION})
    assert posted.status_code == 302
    key = location_key(posted)
    wish_page = page(ming, f"/youth/wishes/{key}")
    assert "您的心愿已交给团干部张伟（市南区团委），等待回复，自5月1日起" in wish_page and DESCRIPTION in wish_page
    assert "2026-05-01 08:00" in wish_page  # the history in Beijing time
    assert_accessible_forms(wish_page)
    assert "确认已实现" not in wish_page  # nothing to confirm yet
    assert TITLE in page(ming, "/youth/")

    # The cadre declines on their task page: the wish goes to the county's pool.
    clock.advance(timedelta(hours=2))
    zhang = staff_client(app, "zhang")
    wish = instance_id(app, key)
    reply = send(zhang, f"/tasks/{open_task_id(app, wish)}/complete", REPLY_BEYOND)
    assert reply.status_code == 302
    assert "您的心愿在市南区团委心愿池，自5月1日起" in page(ming, f"/youth/wishes/{key}")

    # A coordinator takes it on and fulfils it on the board.
    coordinator = staff_client(app, "S_coord")
    pool_task = open_task_id(app, wish)
    assert send(coordinator, f"/wish-pool/{pool_task}/claim").status_code == 302
    assert "由协调员市南协调员办理" in page(ming, f"/youth/wishes/{key}")
    clock.advance(timedelta(days=1))
    assert send(coordinator, f"/wish-pool/{pool_task}/fulfil", pool_form()).status_code == 302
    waiting = page(ming, f"/youth/wishes/{key}")
    assert "您的心愿已由市南区团委心愿池（协调员市南协调员）实现，等待您确认；5月9日前未确认的将自动确认，自5月2日起" in waiting
    assert "确认已实现" in waiting and 'name="rating"' in waiting
    assert_accessible_forms(waiting)

    # Another youth can neither see nor act on it; a cadre has no youth portal.
    hong = youth_client(app, "xiaohong")
    assert page(hong, f"/youth/wishes/{key}", 403)
    assert send(hong, f"/youth/wishes/{key}/confirm", {"rating": "1"}).status_code == 403
    assert send(hong, f"/youth/wishes/{key}/withdraw").status_code == 403
    assert TITLE not in page(hong, "/youth/")
    assert "请用手机号和验证码登录" in page(zhang, "/youth/", 403)

    confirmed = send(ming, f"/youth/wishes/{key}/confirm", {"rating": "5", "comment": "谢谢团委！"})
    assert confirmed.status_code == 302
    done = page(ming, f"/youth/wishes/{key}")
    assert "您的心愿已实现，您已确认（5月2日）" in done and "青年小明确认心愿已实现，评价5星" in done
    assert "撤回这个心愿" not in done
    assert send(ming, f"/youth/wishes/{key}/confirm", {"rating": "5"}).status_code == 409


def test_a_youth_withdraws_a_wish(app, clock, portal):
    ming = youth_client(app, "xiaoming")
    key = location_key(send(ming, "/youth/wishes/new", {"cadre_id": str(portal["zhang"]),
                                                        "title": TITLE, "description": DESCRIPTION}))
    assert "撤回这个心愿" in page(ming, f"/youth/wishes/{key}")
    assert send(ming, f"/youth/wishes/{key}/withdraw", {"reason": "已经借到了"}).status_code == 302
    withdrawn = page(ming, f"/youth/wishes/{key}")
    assert "您已撤回这个心愿（5月1日）" in withdrawn and "青年小明撤回了心愿：“已经借到了”" in withdrawn
    assert send(ming, f"/youth/wishes/{key}/withdraw").status_code == 409
    assert page(ming, "/youth/wishes/wish-unknown", 404)


def test_a_question_to_a_cadre_is_answered_and_rated(app, clock, portal):
    ming = youth_client(app, "xiaoming")
    form = page(ming, "/youth/questions/new")
    assert_accessible_forms(form)
    assert "英雄帖 · 市南区团委" in form and "历下区团委" not in form
    assert send(ming, "/youth/questions/new", {"to": "", "question": "暑期有哪些志愿服务岗位？"}).status_code == 422
    asked = send(ming, "/youth/questions/new", {"to": f"cadre:{portal['zhang']}",
                                                "question": "暑期有哪些志愿服务岗位？"})
    key = location_key(asked)
    assert "您的问题已交给团干部张伟（市南区团委），等待回答，自5月1日起" in page(ming, f"/youth/questions/{key}")
    with app.app_context():
        engine_of(app).complete_task(db.session, open_task_id(app, instance_id(app, key)), {"answer": ANSWER},
                                     "zhang")
        db.session.commit()
    answered = page(ming, f"/youth/questions/{key}")
    assert ANSWER in answered and "团干部张伟已回答您的问题，欢迎在5月8日前评价（1-5星）" in answered
    assert_accessible_forms(answered)
    hong = youth_client(app, "xiaohong")
    assert page(hong, f"/youth/questions/{key}", 403)
    assert send(hong, f"/youth/questions/{key}/rate", {"rating": "1"}).status_code == 403
    missing = send(ming, f"/youth/questions/{key}/rate", {"comment": "很及时"})
    assert missing.status_code == 422 and "请选择1到5星" in missing.get_data(as_text=True)
    assert send(ming, f"/youth/questions/{key}/rate", {"rating": "4", "comment": "很及时"}).status_code == 302
    assert "团干部张伟已回答您的问题，您评价了4星（5月1日）" in page(ming, f"/youth/questions/{key}")
    assert send(ming, f"/youth/questions/{key}/rate", {"rating": "4"}).status_code == 409


def test_an_open_question_goes_to_the_hero_board(app, clock, portal):
    ming = youth_client(app, "xiaoming")
    assert send(ming, "/youth/questions/new", {"to": "area:jn-lx", "question": "历下区有什么招聘会？"}).status_code == 403
    asked = send(ming, "/youth/questions/new", {"to": "area:qd-sn", "question": "市南区有哪些创业扶持政策？"})
    key = location_key(asked)
    status = page(ming, f"/youth/questions/{key}")
    assert "英雄帖" in status and "您的问题在市南区团委“英雄帖”专区，自5月1日起，任何团干部都可以认领回答" in status
    li = staff_client(app, "li")  # a cadre of a street committee under 市南区团委 finds it in their inbox
    task_id = open_task_id(app, instance_id(app, key))
    assert f"/tasks/{task_id}" in page(li, "/")
    assert f"/tasks/{task_id}" not in page(staff_client(app, "wang"), "/")
    assert send(li, f"/tasks/{task_id}/complete", {"answer": ANSWER}).status_code == 302
    assert "团干部李娜已回答您的问题" in page(ming, f"/youth/questions/{key}")


def test_my_lists_are_paginated(app, clock, portal):
    ming = youth_client(app, "xiaoming")
    keys = [location_key(send(ming, "/youth/wishes/new", {"cadre_id": str(portal["zhang"]),
                                                          "title": f"{TITLE}{n}", "description": DESCRIPTION}))
            for n in range(12)]
    home = page(ming, "/youth/")
    assert "查看全部微心愿" in home and keys[-1] in home and keys[-6] not in home
    first = page(ming, "/youth/wishes")
    assert keys[-1] in first and keys[-10] in first and keys[1] not in first
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    rest = page(ming, older.replace("&amp;", "&"))
    assert keys[1] in rest and keys[0] in rest and keys[-1] not in rest and 'rel="next"' not in rest
