"""What the youth-portal and wish-pool page tests share: signing people in, deploying the two processes, pooling a
wish, the pool form with its photo, and checking that every input of a page has a label."""
from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from PIL import Image
from sqlalchemy import select

from tests.league import PASSWORD
from web.extensions import db
from workflows import youth_requests
from workflows.models import Cadre, Notification, Youth
from workflows.organisations import by_code
from workflows.people import hash_password, new_user
from workflows.roles import grant_role, load_actor

from .conftest import BPMN_DIR, csrf_token
from .page_checks import engine_of, open_task_id

PHONES = {"xiaoming": "13800000001", "xiaohong": "13800000002"}
TITLE = "想要一套考研复习资料"
DESCRIPTION = "明年考研，家里买不起全套资料，想借或要一套。"
REPLY_BEYOND = {"reply_decision": "beyond_means", "reply_text": "这套资料我一时找不到，请团委心愿池帮忙。"}
# The pool form's fields but its evidence (a file: see pool_form).
POOL_FORM = {"donor": "新华书店", "resource": "全套考研复习资料一套", "fulfilled_on": "2026-05-03",
             "fulfilment": "协调新华书店捐赠全套资料，并当面送到青年手中。"}


def photo_bytes(colour=(200, 40, 40)) -> bytes:
    """A small real JPEG photo."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def pool_form(**changes) -> dict:
    """The pool form with a photo to upload as its evidence (a new stream each time: a post reads it once)."""
    return {**POOL_FORM, "evidence": (io.BytesIO(photo_bytes()), "签收单.jpg"), **changes}

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


def wish_pooler(app, clock):
    """Deploy the processes; returns ``make(title)``: 小明 posts a wish to 张伟, who declines it; gives its pool task id."""
    deploy_wish_processes(app, clock)
    youth_client(app, "xiaoming")  # signing in once makes the youth's account
    zhang = cadre_ids(app)["zhang"]

    def make(title: str = TITLE) -> int:
        with app.app_context():
            engine = engine_of(app)
            youth_id = db.session.scalar(select(Youth.id).where(Youth.phone == PHONES["xiaoming"]))
            youth = load_actor(db.session, f"youth-{youth_id}")
            wish = youth_requests.post_wish(db.session, engine, youth, zhang, title, DESCRIPTION)
            db.session.commit()
            engine.complete_task(db.session, open_task_id(app, wish.id), REPLY_BEYOND, "zhang")
            db.session.commit()
            return open_task_id(app, wish.id)
    return make


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
        self.in_label = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(set())
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])
        elif tag == "label":
            self.in_label += 1
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.fields.append((attrs.get("name") or "", "(inside its label)" if self.in_label else attrs.get("id")))
        if tag == "input" and attrs.get("name") == "csrf_token" and self.forms:
            self.forms[-1].add("csrf_token")

    def handle_endtag(self, tag):
        if tag == "label" and self.in_label:
            self.in_label -= 1


def assert_accessible_forms(page: str) -> None:
    """Every visible input has a label, every form carries the CSRF token, and the page fits a phone."""
    parser = _Inputs()
    parser.feed(page)
    unlabelled = [name for name, id_ in parser.fields
                  if id_ != "(inside its label)" and (id_ is None or id_ not in parser.labels)]
    assert not unlabelled, f"inputs without a label: {unlabelled}"
    posting = page.count('method="post"')
    assert sum(1 for form in parser.forms if "csrf_token" in form) >= posting, "a form without its CSRF token"
    assert 'name="viewport" content="width=device-width' in page


def location_key(response) -> str:
    """The business key at the end of a redirect to a wish or question page."""
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
