"""The web UI in Chinese (the default) and in English: the language switch and its memory, pages of each kind
of person in both languages, times in the configured zone, the locale's half of bilingual domain messages, what
BPMN files and their forms say and the sentences the domain composes (wish status, bulletin titles, charts) in
English, and catalogues that cover every string the sources hold (extracted here with Babel, not read from a list)."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import session

from tests.league import PASSWORD
from web import create_app, i18n
from web.extensions import db

from web.i18n_extract import extract_bpmn, extract_form_json
from workflows import charts, youth_requests
from workflows.models import Youth
from workflows.phrases import N_, Month, phrase
from workflows.roles import load_actor

from .conftest import BPMN_DIR, GOOD_RECORD, REPO_ROOT, csrf_token
from .page_checks import open_task_id, post
from .wish_journeys import REPLY_BEYOND, TITLE, cadre_ids, deploy_wish_processes, staff_client, youth_client

TRANSLATIONS = REPO_ROOT / "web" / "translations"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
# English msgstrs that may keep Chinese characters on purpose (none so far; a name would go here).
KEPT_IN_CHINESE: set[str] = set()


def switch(client, code: str, page: str = "/login"):
    """Press the header's language button on ``page``."""
    return client.post(f"/language/{code}", data={"csrf_token": csrf_token(client, page), "next": page})


def main_of(page: str) -> str:
    """The page's <main> (the header holds names of people and organisations)."""
    return page[page.index("<main"):page.index("</main>")]


def english(client, path: str, status: int = 200, *expected: str, absent: tuple[str, ...] = ()) -> str:
    """GET ``path``: an English page with each of ``expected`` and none of ``absent``."""
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:3000]
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    for text in expected:
        assert text in page, text
    for text in absent:
        assert text not in page, text
    return page


# ------------------------------------------------------------------------------------ the switch

def test_chinese_by_default_even_when_the_browser_asks_for_english(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "团干部和工作人员登录" in page and "<title>登录 · 联青</title>" in page
    assert '<button type="submit" lang="en">English</button>' in page  # the switch, named in its own language


def test_the_switch_is_remembered_across_sign_out_and_in_and_by_a_cookie(app, client, league, sign_in):
    response = switch(client, "en")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    cookie = response.headers["Set-Cookie"]
    assert "lianqing_locale=en" in cookie and "Max-Age=31536000" in cookie and "HttpOnly" in cookie
    english(client, "/login", 200, "Sign-in for league cadres and staff", ">中文</button>", absent=("团干部和工作人员登录",))

    sign_in("zhang")
    english(client, "/", 200, "<h1>My tasks</h1>", "No open tasks.", "Sign out", absent=("我的待办",))
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    english(client, "/login", 200, "Signed out", "Sign in")
    sign_in("zhang")
    english(client, "/notifications", 200, "<h1>Notifications</h1>")

    fresh = app.test_client()  # a new browser session that only has the long-lived cookie
    fresh.set_cookie("lianqing_locale", "en")
    english(fresh, "/login/youth", 200, "Sign-in for young people", "Send me a code")

    assert switch(client, "zh_Hans_CN", "/").headers["Location"] == "/"
    assert "<h1>我的待办</h1>" in client.get("/").get_data(as_text=True)
    assert switch(client, "fr").status_code == 404
    assert client.get("/language/en").status_code == 405
    away = client.post("/language/en", data={"csrf_token": csrf_token(client, "/"), "next": "//evil.example/x"})
    assert away.headers["Location"] == "/"  # only this site's paths


def test_the_switch_needs_the_csrf_token(client):
    assert client.post("/language/en", data={"next": "/login"}).status_code == 400


# ----------------------------------------------------------------------------- pages in English

def test_a_cadres_inbox_task_page_with_a_form_error_and_instance_in_english(app, client, sign_in, league,
                                                                           start_record):
    instance = start_record(days=5, assignee="zhang")
    sign_in("zhang")
    switch(client, "en", "/")
    english(client, "/", 200, "My tasks", "Open tasks, most urgent first", "Assignee", "6 May 2026, 08:00",
            absent=("待办任务，最紧急的在前", "2026-05-06 08:00"))
    task_id = open_task_id(app, instance)
    response = post(client, f"/tasks/{task_id}/complete", {"kind": "league_lecture", "youth_count": "0"},
                    token_page=f"/tasks/{task_id}")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Please correct the marked fields and submit again." in page
    assert '<span class="field-error" id="e-date">this field is required</span>' in page
    assert "0 is less than the minimum of 1" in page and "a whole number from 1 to 100000" in page  # rule and error
    assert "必填" not in page and "请填写" not in page and "（必填）" not in page and "(required)" in page
    assert "Process diagram: the current step" in page and "This is the first step of the process." in page
    english(client, f"/instances/{instance}", 200, "Audit trail", "Process started", "1 May 2026, 08:00:00",
            absent=("办理记录",))


CAMPAIGN_FORM = {"process_id": "congress_study", "title": "青岛市十九大精神宣讲", "organisation_code": "qd",
                 "target_kind": "cadre", "window_start": "2026-05-01", "window_end": "2026-12-31", "parent_id": "",
                 "param_due_at": "2026-11-30", "param_theme": "学习贯彻党的十九大精神"}


def test_an_organisers_campaign_pages_in_english_with_dates_not_iso_text(app, client, sign_in, league):
    with app.app_context():
        app.extensions["lianqing_engine"].deploy_file(db.session, BPMN_DIR / "congress_study.bpmn")
        db.session.commit()
    sign_in("Q_org")
    switch(client, "en", "/campaigns/")
    english(client, "/campaigns/", 200, "<h1>Campaigns</h1>", "Launch a campaign", "No campaigns yet.")
    english(client, "/campaigns/new?process_id=congress_study", 200, "Congress study", "Campaign title",
            "Each league cadre", "Deadline for league cadres to record their study session", absent=("活动名称",))
    confirm = post(client, "/campaigns/new", {**CAMPAIGN_FORM, "action": "preview"}, "/campaigns/new")
    assert confirm.status_code == 200
    assert 'for: Each league cadre.' in confirm.text and 'id="target-count">2</strong>' in confirm.text
    response = post(client, "/campaigns/new", {**CAMPAIGN_FORM, "action": "confirm"}, "/campaigns/new")
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    queue = app.extensions["lianqing_jobs"]
    if queue.started:
        queue.drain(60)
    show = english(client, f"/campaigns/{campaign_id}", 200, "Campaign launched: 2 targets", "Launch progress",
                   "<dt>Deadline</dt><dd>30 Nov 2026, 23:59</dd>", absent=("发起进度", "2026-11-30T"))
    assert "2 / 2 process instances created (100%)" in show
    progress = client.get(f"/campaigns/{campaign_id}/progress").get_json()
    assert progress["status_name"] == "Launched" and progress["text"].startswith("2 / 2 process instances created")
    english(client, f"/campaigns/{campaign_id}/dashboard?org=qd", 200, "· completion", "2 targets, 0 completed",
            "With overdue tasks", absent=("完成情况",))
    # The same pages in Chinese show the same deadline in the Chinese form, not the stored ISO text.
    switch(client, "zh_Hans_CN", "/campaigns/")
    chinese = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "<dt>截止时间</dt><dd>2026-11-30 23:59</dd>" in chinese and "2026-11-30T" not in chinese


def test_the_assessment_ranking_in_english(app, client, sign_in, sessions, clock):
    from tests.workflows.test_bulletins import build_month
    build_month(sessions, clock)
    clock.set(datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc))
    sign_in("Q_org")
    switch(client, "en", "/assessment/organisations/qd")
    english(client, "/assessment/organisations/qd", 200, "Daily ranking", "Overall score", "Rank 1 among peers",
            "31 May 2026", "Points of the league cadres of", absent=("日常排名", "综合得分"))
    english(client, "/assessment/bulletins/qd/2026-05", 200, "1. Overview", "<strong>6</strong> activities this month")


def test_the_wish_pool_board_and_the_youth_home_in_english(app, clock, league):
    deploy_wish_processes(app, clock)
    youth = youth_client(app, "xiaoming")
    switch(youth, "en", "/youth/")
    english(youth, "/youth/", 200, "<h1>Youth services</h1>", "Post a micro-wish", "My micro-wishes",
            "You have not posted a micro-wish yet.", absent=("青年服务",))
    coordinator = staff_client(app, "S_coord")
    switch(coordinator, "en", "/wish-pool/")
    english(coordinator, "/wish-pool/", 200, "<h1>Wish pool</h1>", "Wish pool of this level",
            "The wish pool is empty for now.", "<strong>0</strong> to claim", absent=("心愿池里暂时没有心愿",))


def test_the_admins_process_page_and_its_problem_list_in_english(app, client, sign_in, league):
    sign_in("P_admin")
    switch(client, "en", "/admin/processes")
    english(client, "/admin/processes", 200, "Process deployment", "Upload a new process or a new version",
            "No process has been deployed yet.")
    broken = (BPMN_DIR / "activity_record.bpmn").read_bytes().replace(b"</bpmn:definitions>", b"")
    response = client.post("/admin/processes/preview", data={
        "csrf_token": csrf_token(client, "/admin/processes"), "bpmn": (io.BytesIO(broken), "broken.bpmn")},
        content_type="multipart/form-data")
    assert response.status_code == 422
    problems = main_of(response.get_data(as_text=True))
    assert "<strong>broken.bpmn cannot be deployed</strong>" in problems
    listed = re.findall(r'<tr class="problem">.*?</tr>', problems, re.DOTALL)
    assert listed and not any(CHINESE.search(row) for row in listed), listed  # only the English half


# -------------------------------------------------------------------------------------- error pages

@pytest.fixture
def raising(app):
    """Test-only routes that raise a conflict (409) and an unexpected error (500)."""
    from engine.errors import TaskAlreadyCompleted

    def conflict():
        raise TaskAlreadyCompleted("任务 7 已被张伟完成 / task 7 was already completed by 张伟")

    def boom():
        raise RuntimeError("secret detail")
    app.add_url_rule("/_test/conflict", "test_conflict", conflict)
    app.add_url_rule("/_test/boom", "test_boom", boom)
    app.add_url_rule("/_test/upload", "test_upload", lambda: "ok", methods=["POST"])
    app.config["MAX_CONTENT_LENGTH"] = 1000
    return app


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "en"])
def test_error_pages_follow_the_locale(raising, league, locale):
    client = raising.test_client()
    switch(client, locale)
    expected = {"zh_Hans_CN": {403: ("出错了（403）：没有权限", "只有省级管理员可以部署流程"),
                            404: ("出错了（404）：找不到", "要找的页面或记录不存在"),
                            409: ("出错了（409）：已被处理", "任务 7 已被张伟完成"),
                            413: ("出错了（413）：文件太大", "请压缩或拆分后再上传"),
                            500: ("出错了（500）：系统出了点问题", "服务器内部错误，已记录")},
             "en": {403: ("Error (403): Not allowed", "only an admin of the top organisation may deploy processes"),
                    404: ("Error (404): Not found", "The page or record does not exist"),
                    409: ("Error (409): Already dealt with", "task 7 was already completed by 张伟"),
                    413: ("Error (413): File too large", "Compress or split it"),
                    500: ("Error (500): Something went wrong", "internal error, logged")}}[locale]
    token = csrf_token(client)
    client.post("/login", data={"username": "zhang", "password": PASSWORD, "csrf_token": token})
    answers = {403: client.get("/admin/processes"), 404: client.get("/nowhere"), 409: client.get("/_test/conflict"),
               413: client.post("/_test/upload", data={"x": "y" * 5000, "csrf_token": token}),
               500: client.get("/_test/boom")}
    for status, response in answers.items():
        page = response.get_data(as_text=True)
        assert response.status_code == status
        headline, words = expected[status]
        assert headline in page and words in page, (status, main_of(page))
        assert f'<html lang="{i18n.HTML_LANG[locale]}">' in page
        if locale == "en":  # the Chinese half of the bilingual message, and Werkzeug's stock English, are gone
            assert "已被张伟完成" not in page and "secret detail" not in page and "只有省级管理员" not in page
            assert not CHINESE.search(re.sub(r"张伟|联青|中文", "", main_of(page))), main_of(page)
        assert "The requested URL was not found" not in page


# ------------------------------------------------------------------------------ bilingual messages

@pytest.mark.parametrize("message,chinese,english_half", [
    ("必填 / this field is required", "必填", "this field is required"),
    ("请填写1–100000 的整数 / 0 is less than the minimum of 1", "请填写1–100000 的整数", "0 is less than the minimum of 1"),
    ("「青年 / 团员」不能为空 / 'youth / member' may not be empty", "「青年 / 团员」不能为空",
     "'youth / member' may not be empty"),
    ("没有分隔的中文", "没有分隔的中文", "没有分隔的中文"),
    ("积分低于60分 / below 60 points；1条记录被撤销 / 1 record revoked", "积分低于60分；1条记录被撤销",
     "below 60 points; 1 record revoked"),
    ("plain English / with a slash", "plain English / with a slash", "plain English / with a slash"),
    (None, "", ""),
])
def test_localized_picks_the_half_of_the_locale(app, message, chinese, english_half):
    with app.test_request_context("/"):
        assert i18n.localized(message) == chinese
    with app.test_request_context("/"):
        session[i18n.SESSION_KEY] = "en"
        assert i18n.localized(message) == english_half


def test_a_domain_error_on_a_page_shows_only_the_locales_half(client, league):
    switch(client, "en")
    refused = client.post("/login", data={"username": "zhang", "password": "wrong", "csrf_token": csrf_token(client)})
    assert refused.status_code == 401
    page = refused.get_data(as_text=True)
    assert "wrong user name or password" in page and "账号或密码不正确" not in page
    switch(client, "zh_Hans_CN")
    page = client.post("/login", data={"username": "zhang", "password": "wrong",
                                       "csrf_token": csrf_token(client)}).get_data(as_text=True)
    assert "账号或密码不正确" in page and "wrong user name or password" not in page


# ------------------------------------------------------------------------------------------ time zones

def test_times_are_shown_in_the_configured_zone(app, client, clock, database_url, league, start_record, sign_in):
    assert app.config["BABEL_DEFAULT_TIMEZONE"] == "Asia/Shanghai"  # LIANQING_TIMEZONE unset
    instance = start_record(days=5, assignee="zhang")  # started 2026-05-01 00:00 UTC
    sign_in("zhang")
    page = client.get(f"/instances/{instance}").get_data(as_text=True)
    assert 'datetime="2026-05-01T00:00:00+00:00">2026-05-01 08:00:00</time>' in page
    with app.app_context():
        db.engine.dispose()
    london = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock,
                         "BPMN_DIR": str(BPMN_DIR), "START_SWEEPER": False, "BABEL_DEFAULT_TIMEZONE": "Europe/London"})
    try:
        other = london.test_client()
        other.post("/login", data={"username": "zhang", "password": PASSWORD, "csrf_token": csrf_token(other)})
        page = other.get(f"/instances/{instance}").get_data(as_text=True)
        assert 'datetime="2026-05-01T00:00:00+00:00">2026-05-01 01:00:00</time>' in page  # BST, UTC+1
        assert "2026-05-06 01:00" in other.get("/").get_data(as_text=True)  # the deadline in the inbox
    finally:
        with london.app_context():
            db.engine.dispose()


def test_the_date_filters(app):
    moment = datetime(2026, 12, 31, 20, 30, tzinfo=timezone.utc)
    with app.test_request_context("/"):
        assert i18n.local_time(moment) == "2027-01-01 04:30"
        assert i18n.local_time(moment, "date") == "2027-01-01" and i18n.local_time(moment, "month_day") == "01-01"
        assert i18n.local_time(moment, "%Y/%m/%d") == "2027/01/01"  # a strftime pattern still works
        assert i18n.value_text("2026-11-30T18:00:00+08:00") == "2026-11-30 18:00"
        assert i18n.value_text("2026-11-30") == "2026-11-30" and i18n.value_text("学习") == "学习"
        assert i18n.local_date("2026-05-31") == "2026-05-31" and i18n.local_date("不是日期") == "不是日期"
        assert i18n.local_time(None) == "" and i18n.local_date(None) == ""
    with app.test_request_context("/"):
        session[i18n.SESSION_KEY] = "en"
        assert i18n.local_time(moment) == "1 Jan 2027, 04:30"
        assert i18n.local_date(moment.date()) == "31 Dec 2026"
        assert i18n.value_text("2026-11-30T18:00:00+08:00") == "30 Nov 2026, 18:00"


# ------------------------------------------------------------------------------------------ catalogues

def _extracted() -> dict:
    """Every message the sources hold, extracted now with babel.cfg: (context, msgid) → a file holding it
    (msgid is a (singular, plural) pair for ngettext)."""
    with open(REPO_ROOT / "babel.cfg", encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = {}
    for filename, _lineno, message, _comments, context in extract_from_dir(
            str(REPO_ROOT), method_map, options_map, keywords=KEYWORDS):
        found.setdefault((context, message), filename)
    return found


def _catalogue(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=locale)


def _entry(catalogue, context, msgid):
    return catalogue.get(msgid if isinstance(msgid, str) else msgid[0], context=context)


@pytest.fixture(scope="module")
def extracted() -> dict:
    return _extracted()


def test_extraction_finds_the_sources_strings(extracted):
    assert len(extracted) > 500
    assert (None, "我的待办") in extracted and (None, "团干部") in extracted  # a template's; a domain label
    assert any(isinstance(msgid, tuple) for _context, msgid in extracted)  # ngettext
    assert ("token", "撤销") in extracted  # pgettext


def test_every_extracted_message_has_an_english_translation(extracted):
    english_po = _catalogue("en")
    problems = []
    for (context, msgid), filename in extracted.items():
        message = _entry(english_po, context, msgid)
        if message is None:
            problems.append(f"missing: {msgid!r} ({filename})")
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(text.strip() for text in strings):
            problems.append(f"untranslated or fuzzy: {msgid!r} ({filename})")
    assert not problems, "run `make translations` and translate:\n" + "\n".join(problems)


def test_the_chinese_catalogue_has_every_message_too(extracted):
    chinese_po = _catalogue("zh_Hans_CN")
    missing = [msgid for context, msgid in extracted if _entry(chinese_po, context, msgid) is None]
    assert not missing, f"run `make translations`: {missing}"


def test_no_english_translation_keeps_chinese_and_placeholders_match():
    english_po = _catalogue("en")
    kept = []
    for message in english_po:
        if not message.id:
            continue
        for text in message.string if isinstance(message.string, tuple) else (message.string,):
            if CHINESE.search(text) and text not in KEPT_IN_CHINESE:
                kept.append((message.id, text))
    assert not kept, kept
    errors = [(message.id, [str(error) for error in found]) for message, found in english_po.check()]
    assert not errors, errors


@pytest.mark.parametrize("locale", ["en", "zh_Hans_CN"])
def test_each_committed_mo_is_a_fresh_compile_of_its_po(locale):
    compiled = io.BytesIO()
    write_mo(compiled, _catalogue(locale), use_fuzzy=False)
    committed = (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert compiled.getvalue() == committed, "run `make translations` (or pybabel compile -d web/translations)"


def test_the_domain_labels_shown_in_pages_are_all_listed_for_extraction():
    from web.domain_terms import TERMS
    from workflows import wish_pool
    from workflows.campaign_dashboard import INSTANCE_STATUS_NAMES, PEOPLE_FILTERS
    from workflows.campaign_processes import PROCESSES, TARGET_KIND_NAMES
    from workflows.campaigns import STATUS_NAMES
    from workflows.organisations import KIND_NAMES_ZH
    from workflows.roles import ROLE_NAMES_ZH
    from workflows.roster import CADRE_KIND_NAMES_ZH
    from workflows.spot_checks import KIND_NAMES_ZH as ACTIVITY_KIND_NAMES
    labels = set()
    for names in (ROLE_NAMES_ZH, STATUS_NAMES, TARGET_KIND_NAMES, INSTANCE_STATUS_NAMES, PEOPLE_FILTERS,
                  CADRE_KIND_NAMES_ZH, KIND_NAMES_ZH, ACTIVITY_KIND_NAMES, wish_pool.SCOPES, wish_pool.SHOWS,
                  wish_pool.REASONS_ZH):
        labels.update(names.values())
    for process in PROCESSES.values():
        labels.add(process.name)
        for spec in process.schema["properties"].values():
            labels.update(text for text in (spec.get("title"), spec.get("description")) if text)
    assert labels - set(TERMS) == set(), "add them to web/domain_terms.py and run `make translations`"


def test_the_babel_config_and_the_package_data_name_the_catalogues():
    setup = (REPO_ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert "translations/*/LC_MESSAGES/*" in setup and "flask-babel>=4.0" in setup
    assert Path(REPO_ROOT / "babel.cfg").is_file()
    assert sorted(p.name for p in TRANSLATIONS.iterdir() if p.is_dir()) == ["en", "zh_Hans_CN"]


def test_the_record_form_still_completes_after_switching(app, client, sign_in, league, start_record):
    instance = start_record(days=5, assignee="zhang")
    sign_in("zhang")
    switch(client, "en", "/")
    task_id = open_task_id(app, instance)
    response = post(client, f"/tasks/{task_id}/complete", GOOD_RECORD, token_page=f"/tasks/{task_id}")
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Completed “Record an activity”" in page  # the flash, in English, naming the BPMN step in English


# ------------------------------------------------------------- BPMN files, their forms, the domain's sentences

def test_the_bpmn_extractor_finds_names_documentation_and_instructions_with_where_they_stand():
    with open(BPMN_DIR / "micro_wish.bpmn", "rb") as bpmn:
        found = {message: (line, comments) for line, _function, message, comments
                 in extract_bpmn(bpmn, KEYWORDS, [], {})}
    line, comments = found["回复微心愿"]
    assert comments == ["name of userTask Task_reply"] and line > 1
    assert found["微心愿与心愿池"][1] == ["name of process micro_wish"]  # (its participant has the same name)
    assert found["请在3天内回复青年的微心愿。力所能及的请答应并在14天内实现；超出能力范围的请如实说明，心愿将转入县级团委心愿池，"
                 "由协调员统筹资源帮助实现。"][1] == ["instructions of userTask Task_reply"]
    assert any(comments == ["documentation of userTask Task_reply"] for _line, comments in found.values())
    assert "力所能及？" in found and "3天未回复" in found  # a gateway's and a timer's names, for the diagram
    assert "cadre" not in found and "coordinator" not in found  # the lanes' role keys are not words to translate


def test_the_form_extractor_finds_titles_descriptions_and_option_labels():
    with open(BPMN_DIR / "activity_record.json", "rb") as form:
        found = {message: (line, comments) for line, _function, message, comments
                 in extract_form_json(form, KEYWORDS, [], {})}
    assert found["记录“五个一”活动"][1] == ["form title"]
    assert found["活动类别"] == (9, ["field.kind title"])  # its line in the file
    assert found["讲一次团课"][1] == ["field.kind option league_lecture"]
    assert "practical_thing" not in found and "date" not in found
    with open(BPMN_DIR / "micro_wish.pool.json", "rb") as form:
        assert "资源内容、数量或金额" in {message for _l, _f, message, _c in extract_form_json(form, KEYWORDS, [], {})}


def test_babel_config_extracts_bpmn_forms_and_the_domains_phrases(extracted):
    assert extracted[(None, "记录活动")].startswith("bpmn/")          # a task's name
    assert (None, "活动类别") in extracted                              # a form's field label
    assert extracted[(None, "您的心愿在%(pool)s心愿池，自%(since)s起")] == "workflows/wishes.py"
    assert (None, "%(organisation)s %(month)s“1+100”工作月度通报") in extracted


def test_a_task_page_in_english_names_the_step_its_instructions_form_and_diagram_labels(app, client, sign_in, league,
                                                                                      start_record):
    instance = start_record(days=5, assignee="zhang")
    sign_in("zhang")
    switch(client, "en", "/")
    english(client, "/", 200, ">Record an activity</a>", "Recording and verifying five-ones activities",
            absent=("记录活动",))
    page = english(client, f"/tasks/{open_task_id(app, instance)}", 200,
                   "<h1>Record an activity</h1>", "Recording and verifying five-ones activities #",
                   "<p>Record this activity truthfully, with evidence such as photos or a sign-in sheet.</p>",
                   "<p>Record the activity’s kind, date, place, number of young people taking part and what happened",
                   '<h2 id="form-title">Record a five-ones activity</h2>', ">Activity kind <span",
                   ">Give a league lecture</option>", ">Young people taking part <span",
                   "Process diagram: the current step “Record an activity” is highlighted",
                   absent=("请如实记录本次活动", "活动类别"))
    visible = re.sub(r'<script type="application/json".*?</script>', "", main_of(page), flags=re.DOTALL)
    assert not CHINESE.search(visible), CHINESE.findall(visible)
    diagram = re.search(r'<script type="application/json" id="task-diagram-data">(.*?)</script>', page).group(1)
    assert r'name=\"Record an activity\"' in diagram and "Overdue" in diagram  # the viewer's labels too
    english(client, f"/instances/{instance}", 200, "Recording and verifying five-ones activities #",
            ">Record an activity</a>", absent=("“五个一”活动记录与核实",))
    switch(client, "zh_Hans_CN", "/")
    chinese = client.get(f"/tasks/{open_task_id(app, instance)}").get_data(as_text=True)
    assert "<h1>记录活动</h1>" in chinese and ">活动类别 <span" in chinese and "Record an activity" not in chinese


def test_a_youths_wish_status_and_history_in_english_and_in_chinese(app, clock, league):
    deploy_wish_processes(app, clock)
    youth = youth_client(app, "xiaoming")
    with app.app_context():
        engine = app.extensions["lianqing_engine"]
        actor = load_actor(db.session, youth_username(app, "xiaoming"))
        wish = youth_requests.post_wish(db.session, engine, actor, cadre_ids(app)["zhang"], TITLE, "明年考研，想借一套资料。")
        db.session.commit()
        wish_id, key = wish.id, wish.business_key
        engine.complete_task(db.session, open_task_id(app, wish_id), REPLY_BEYOND, "zhang")
        db.session.commit()
    switch(youth, "en", "/youth/")
    english(youth, "/youth/", 200, "Your wish has been in the 市南区团委 wish pool since 1 May", absent=("您的心愿在",))
    page = english(youth, f"/youth/wishes/{key}", 200,
                   'role="status">Your wish has been in the 市南区团委 wish pool since 1 May</p>',
                   f"Young person 小明 posted the micro-wish “{TITLE}”",
                   "League cadre 张伟 replied that it is beyond their means: the wish went to the wish pool: “",
                   "The wish entered the 市南区团委 wish pool, waiting for a coordinator to take it on",
                   absent=("心愿进入", "青年小明"))
    assert "5月1日" not in page
    switch(youth, "zh_Hans_CN", "/youth/")
    chinese = youth.get(f"/youth/wishes/{key}").get_data(as_text=True)
    assert 'role="status">您的心愿在市南区团委心愿池，自5月1日起</p>' in chinese and "心愿进入市南区团委心愿池" in chinese
    coordinator = staff_client(app, "S_coord")  # the coordinator's task page shows the same history in English
    switch(coordinator, "en", "/")
    english(coordinator, f"/tasks/{open_task_id(app, wish_id)}", 200,
            "<h1>Wish pool: coordinate the micro-wish’s fulfilment</h1>", "The wish entered the 市南区团委 wish pool",
            ">Charitable donor</label>", absent=("心愿进入",))


def youth_username(app, key: str) -> str:
    """The user name of the young person ``key`` of tests/web/wish_journeys.py (made when they first sign in)."""
    from sqlalchemy import select

    from .wish_journeys import PHONES
    with app.app_context():
        return f"youth-{db.session.scalar(select(Youth.id).where(Youth.phone == PHONES[key]))}"


def test_the_domains_phrases_are_chinese_as_text_and_translated_in_the_request(app):
    from datetime import date as day
    said = phrase(N_("您的心愿已由%(by)s实现，等待您确认；%(deadline)s前未确认的将自动确认，自%(since)s起"),
                  by=phrase(N_("%(pool)s心愿池（协调员%(name)s）"), pool="市南区团委", name="王芳"),
                  deadline=datetime(2026, 5, 10, 20, 0, tzinfo=timezone.utc), since=day(2026, 5, 3))
    assert str(said) == "您的心愿已由市南区团委心愿池（协调员王芳）实现，等待您确认；5月11日前未确认的将自动确认，自5月3日起"
    title = phrase(N_("%(organisation)s %(month)s“1+100”工作月度通报"), organisation="青岛团市委", month=Month(2026, 5))
    with app.test_request_context("/"):
        assert i18n.term(said) == str(said) and i18n.term(title) == "青岛团市委 2026年5月“1+100”工作月度通报"
    with app.test_request_context("/"):
        session[i18n.SESSION_KEY] = "en"
        assert i18n.term(said) == ("Your wish was fulfilled by the 市南区团委 wish pool (coordinator 王芳) and has been "
                                   "waiting for your confirmation since 3 May; unless you confirm it before 11 May, it "
                                   "is confirmed automatically")
        assert i18n.term(title) == "青岛团市委: “1+100” monthly bulletin, May 2026"
        svg = charts.rank_over_time([(day(2026, 3, 2), 1)], of=3, wording=i18n.wording())
        assert "<title" in svg and "Rank over time: 2 Mar rank 1 (of 3)." in svg and ">Rank 3</text>" in svg
        assert not CHINESE.search(svg.replace(charts.FONT_FAMILY, ""))


def test_a_bulletin_its_title_and_its_charts_in_english(app, client, sign_in, sessions, clock):
    from tests.workflows.test_bulletins import build_month
    build_month(sessions, clock)
    clock.set(datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc))
    sign_in("Q_org")
    switch(client, "en", "/assessment/bulletins/qd/2026-05")
    page = english(client, "/assessment/bulletins/qd/2026-05", 200,
                   "<h1>青岛团市委: “1+100” monthly bulletin, May 2026</h1>",
                   "<title>青岛团市委: “1+100” monthly bulletin, May 2026",
                   "League cadres per 10-point band, 4 in all: 0–9 points: 4, ", ">Points</text>",
                   absent=("月度通报", "积分（分）", "按积分分段"))
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 2 and not any(CHINESE.search(re.sub(r"青岛团市委|市南区团委|济南团市委|[\u4e00-\u9fff]+团委",
                                                                  "", svg.replace(charts.FONT_FAMILY, "")))
                                      for svg in svgs), svgs
    english(client, "/assessment/organisations/qd", 200, ">Rank 1</text>", ">31 May</text>", ": 31 May rank 1",
            absent=("第1名", "5月31日"))  # the rank over time: its axis, its points and its description
