"""What the youth-portal and wish-pool page tests share: signing people in, deploying the two processes,
and checking that every input of a page has a label."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import select

from tests.league import PASSWORD
from web.extensions import db
from workflows.models import Cadre, Notification
from workflows.organisations import by_code
from workflows.people import hash_password, new_user
from workflows.roles import grant_role

from .conftest import BPMN_DIR, csrf_token

PHONES = {"xiaoming": "13800000001", "xiaohong": "13800000002"}
TITLE = "想要一套考研复习资料"
DESCRIPTION = "明年考研，家里买不起全套资料，想借或要一套。"
REPLY_BEYOND = {"reply_decision": "beyond_means", "reply_text": "这套资料我一时找不到，请团委心愿池帮忙。"}
POOL_FORM = {"donor": "新华书店", "resource": "全套考研复习资料一套", "fulfilled_on": "2026-05-03",
             "fulfilment": "协调新华书店捐赠全套资料，并当面送到青年手中。", "evidence": "签收单.jpg\n合影.jpg"}

_HASHES: dict[str, str] = {}


def _password_hash() -> str:
    """The test password's hash, made once (argon2 is slow on purpose)."""
    if PASSWORD not in _HASHES:
        _HASHES[PASSWORD] = hash_password(PASSWORD)
    return _HASHES[PASSWORD]


def deploy_wish_processes(app, clock, coordinators=(("P_coord", "省协调员", "prov"), ("J_coord", "济南协调员", "jn"))):
    """Deploy micro_wish and youth_voice, and add coordinators at the province and in Jinan."""
    with app.app_context():
        engine = app.extensions["lianqing_engine"]
        for name in ("micro_wish", "youth_voice"):
            engine.deploy_file(db.session, BPMN_DIR / f"{name}.bpmn")
        for username, name, code in coordinators:
            org = by_code(db.session, code)
            user = new_user(username, name, clock.now(), organisation=org)
            user.password_hash = _password_hash()
            db.session.add(user)
            db.session.flush()
            grant_role(db.session, user, "coordinator", org)
        db.session.commit()


def cadre_ids(app) -> dict[str, int]:
    """The league's cadres' ids by user name (the league fixture's objects are detached)."""
    with app.app_context():
        return {code[2:]: cadre_id for code, cadre_id in db.session.execute(select(Cadre.code, Cadre.id))}


def staff_client(app, username: str):
    """A new test client signed in with user name and password."""
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def youth_client(app, key: str):
    """A new test client signed in as a young person with phone and one-time code, as on a phone."""
    client = app.test_client()
    phone = PHONES[key]
    token = csrf_token(client, "/login/youth")
    assert client.post("/login/youth", data={"phone": phone, "csrf_token": token}).status_code == 200
    with app.app_context():
        sms = db.session.scalar(select(Notification).where(Notification.channel == "sms",
                                                           Notification.address == phone)
                                .order_by(Notification.id.desc()).limit(1))
        code = re.search(r"(\d{6})", sms.body).group(1)
    response = client.post("/login/youth/verify", data={"phone": phone, "code": code, "csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (302, "/youth/")  # signed in: the youth portal
    return client


def send(client, path: str, data: dict | None = None, token_page: str = "/notifications"):
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, token_page)})


class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str | None]] = []
        self.labels: set[str] = set()
        self.forms: list[set[str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(set())
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.fields.append((attrs.get("name") or "", attrs.get("id")))
        if tag == "input" and attrs.get("name") == "csrf_token" and self.forms:
            self.forms[-1].add("csrf_token")


def assert_accessible_forms(page: str) -> None:
    """Every visible input has a label, every form carries the CSRF token, and the page fits a phone."""
    parser = _Inputs()
    parser.feed(page)
    unlabelled = [name for name, id_ in parser.fields if id_ is None or id_ not in parser.labels]
    assert not unlabelled, f"inputs without a label: {unlabelled}"
    posting = page.count('method="post"')
    assert sum(1 for form in parser.forms if "csrf_token" in form) >= posting, "a form without its CSRF token"
    assert 'name="viewport" content="width=device-width' in page


def location_key(response) -> str:
    """The business key at the end of a redirect to a wish or question page."""
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
