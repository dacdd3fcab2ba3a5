"""Evidence uploads on the task page, and the hostile upload corpus.

A cadre attaches photos or files while completing a task (plain multipart form).  A form that fails
validation comes back with the files already stored listed (ticked boxes) so nothing is uploaded
twice; a refused file (type by content, size, count, total, cut short) gets its message beside the
field and stores nothing; an oversized request is a friendly 413 and stores nothing; names never
reach the file system; only the right people download, with the stored type and ``nosniff``.
Staged files nobody submitted are deleted after a day by a periodic job.  SQLite and PostgreSQL.
"""
from __future__ import annotations

import io
import random
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import func, select

from engine.models import HumanTask
from tests.job_support import inprocess_queue
from tests.league import PASSWORD
from web import create_app
from web.extensions import db
from workflows.activities import record_activity
from workflows.evidence import EvidenceFile, EvidenceSettings, store_evidence
from workflows.models import Cadre, Organisation
from workflows.spot_checks import SpotCheckSettings, start_spot_checks

from .conftest import BPMN_DIR, GOOD_RECORD, csrf_token
from .page_checks import open_task_id

KIB = 1024
LIMITS = {"EVIDENCE_MAX_FILE_BYTES": 64 * KIB, "EVIDENCE_MAX_RECORD_BYTES": 160 * KIB, "EVIDENCE_MAX_FILES": 4,
          "EVIDENCE_FORM_OVERHEAD_BYTES": 64 * KIB}
REQUEST_LIMIT = 224 * KIB  # MAX_CONTENT_LENGTH: one record's evidence plus the form


def jpeg_bytes(width: int = 48, height: int = 32, seed: int = 1) -> bytes:
    """A real (noisy) JPEG photo."""
    noise = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), noise).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


JPEG = jpeg_bytes()
PNG = png_bytes()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
MP4 = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + _box(b"moov", _box(b"mvhd", b"\x00" * 100)) \
    + _box(b"mdat", b"\x01" * 400)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
HTML = b"<!doctype html><script>alert(document.cookie)</script>"


def padded(content: bytes, size: int) -> bytes:
    """A valid file of exactly ``size`` bytes (data after a JPEG's end is ignored, as in motion photos)."""
    return content + b"\x00" * (size - len(content))


# -------------------------------------------------------------------------------------------- set-up

@pytest.fixture
def evidence_dir(tmp_path):
    return tmp_path / "evidence"


@pytest.fixture
def app(database_url, clock, evidence_dir):
    """The app with its evidence under tmp and small limits (64 KB a file, 4 files and 160 KB a record)."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock,
                      "BPMN_DIR": str(BPMN_DIR), "START_SWEEPER": False, "EVIDENCE_DIR": str(evidence_dir),
                      **LIMITS})
    yield app
    with app.app_context():
        db.engine.dispose()


def client_of(app, username: str):
    """A test client signed in as ``username``."""
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    return client


@pytest.fixture
def record_task(app, start_record, league):
    """An activity record of qd-sn assigned to zhang; returns its task id."""
    def make() -> int:
        return open_task_id(app, start_record(org="qd-sn", assignee="zhang"))
    return make


@pytest.fixture
def zhang(app, league):
    return client_of(app, "zhang")


def submit(client, task_id: int, files=(), form: dict | None = None, csrf: bool = True, **kwargs):
    """Post the task form as a browser does (multipart), with ``files`` as (name, bytes[, declared type])."""
    data = dict(GOOD_RECORD if form is None else form)
    if csrf:
        data["csrf_token"] = csrf_token(client, f"/tasks/{task_id}")
    parts = [(io.BytesIO(f[1]), f[0], f[2] if len(f) > 2 else "application/octet-stream") for f in files]
    if parts:  # beside the refs of files already carried (the ticked boxes), if any
        data["evidence"] = [data["evidence"], *parts] if "evidence" in data else parts
    return client.post(f"/tasks/{task_id}/complete", data=data, content_type="multipart/form-data", **kwargs)


def stored(app, evidence_dir) -> tuple[int, list[str]]:
    """How many evidence rows there are, and every file under the evidence directory."""
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(EvidenceFile))
    files = sorted(str(p.relative_to(evidence_dir)) for p in evidence_dir.rglob("*") if p.is_file()) \
        if evidence_dir.exists() else []
    return count, files


def rows(app) -> list[EvidenceFile]:
    with app.app_context():
        found = list(db.session.scalars(select(EvidenceFile).order_by(EvidenceFile.id)))
        db.session.expunge_all()
        return found


def task_state(app, task_id: int) -> str:
    with app.app_context():
        return db.session.get(HumanTask, task_id).state


def field_error(page: str) -> str:
    match = re.search(r'<span class="field-error" id="e-evidence">(.*?)</span>', page, re.DOTALL)
    return match.group(1) if match else ""


# -------------------------------------------------------------------------------------- the form

def test_the_form_has_a_file_input_with_the_allowed_types_and_the_limits(app, zhang, record_task):
    page = zhang.get(f"/tasks/{record_task()}").text
    assert 'enctype="multipart/form-data"' in page
    match = re.search(r'<input id="f-evidence" name="evidence" type="file" multiple accept="([^"]+)"', page)
    accepted = set(match.group(1).split(",")) if match else set()
    assert {"image/jpeg", "image/png", "application/pdf", "video/mp4", ".jpg"} <= accepted
    assert '<label for="f-evidence">' in page
    assert "每个文件不超过 64 KB，最多 4 个，合计不超过 160 KB" in page


def test_a_cadre_attaches_files_and_the_organiser_sees_and_opens_them(app, zhang, record_task, evidence_dir):
    task_id = record_task()
    response = submit(zhang, task_id, [("签到表.jpg", JPEG, "image/jpeg"), ("会议记录.pdf", PDF, "application/pdf"),
                                       ("clip.mp4", MP4, "video/mp4"), ("合影.png", PNG, "image/png")])
    assert response.status_code == 302, field_error(response.text)
    files = rows(app)
    assert [f.original_name for f in files] == ["签到表.jpg", "会议记录.pdf", "clip.mp4", "合影.png"]
    assert all(f.instance_id is not None for f in files)  # linked to the instance by the completion
    assert stored(app, evidence_dir)[0] == 4 and len(stored(app, evidence_dir)[1]) == 4

    organiser = client_of(app, "S_org")  # the organiser over qd-sn, on the next step (核实活动) and the instance
    with app.app_context():
        verify = db.session.scalar(select(HumanTask.id).where(HumanTask.bpmn_id == "Task_verify"))
    for page in (organiser.get(f"/tasks/{verify}").text, organiser.get(f"/instances/{files[0].instance_id}").text):
        assert "佐证材料" in page and "签到表.jpg" in page
        assert f"/evidence/{files[0].stored_name}" in page
    photo = organiser.get(f"/evidence/{files[0].stored_name}")
    assert photo.status_code == 200 and photo.data == JPEG
    assert photo.headers["Content-Type"] == "image/jpeg"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    assert photo.headers["Content-Disposition"].startswith("inline")
    minutes = organiser.get(f"/evidence/{files[1].stored_name}")
    assert minutes.headers["Content-Type"] == "application/pdf"
    assert minutes.headers["Content-Disposition"].startswith("attachment")
    assert "filename*=UTF-8''%E4%BC%9A%E8%AE%AE" in minutes.headers["Content-Disposition"]


def test_a_form_that_fails_validation_keeps_the_files_already_stored(app, zhang, record_task, evidence_dir):
    task_id = record_task()
    response = submit(zhang, task_id, [("签到表.jpg", JPEG)], form=dict(GOOD_RECORD, youth_count="0"))
    assert response.status_code == 422
    [staged] = rows(app)
    assert staged.instance_id is None  # stored, staged: not yet part of any record
    page = response.text
    box = rf'<input type="checkbox" name="evidence" value="{staged.stored_name}" checked>'
    assert re.search(box + r"\s*签到表.jpg", page)
    assert "KB" in page
    # The cadre fixes the number and submits without choosing the photo again.
    again = submit(zhang, task_id, form=dict(GOOD_RECORD, evidence=staged.stored_name))
    assert again.status_code == 302
    [kept] = rows(app)
    assert kept.id == staged.id and kept.instance_id is not None
    assert stored(app, evidence_dir)[0] == 1 and len(stored(app, evidence_dir)[1]) == 1


def test_an_unticked_file_is_not_submitted(app, zhang, record_task):
    task_id = record_task()
    submit(zhang, task_id, [("a.jpg", JPEG), ("b.png", PNG)], form=dict(GOOD_RECORD, youth_count="0"))
    first, second = rows(app)
    assert submit(zhang, task_id, form=dict(GOOD_RECORD, evidence=second.stored_name)).status_code == 302
    first, second = rows(app)
    assert first.instance_id is None and second.instance_id is not None  # the unticked one stays staged (cleaned later)


# ------------------------------------------------------------------------- refused files store nothing

@pytest.mark.parametrize("files,message", [
    ([("photo.jpg", EXE, "image/jpeg")], "按文件内容判断"),                       # an executable renamed .jpg
    ([("photo.jpg", HTML, "image/jpeg")], "按文件内容判断"),                      # HTML renamed .jpg
    ([("good.jpg", JPEG), ("page.html", HTML, "text/html")], "「page.html」"),   # one bad file: the batch is refused
    ([("empty.jpg", b"", "image/jpeg")], "文件为空"),                             # zero bytes
    ([("cut.jpg", JPEG[: len(JPEG) // 2], "image/jpeg")], "文件不完整"),          # upload cut short
    ([("cut.png", PNG[:60], "image/png")], "文件不完整"),
    ([("cut.mp4", MP4[:-50], "video/mp4")], "文件不完整"),
    ([("cut.pdf", PDF[:30], "application/pdf")], "文件不完整"),
    ([("big.jpg", padded(JPEG, 64 * KIB + 1))], "大小限制"),                      # one file over 64 KB
    ([(f"{n}.jpg", JPEG) for n in range(5)], "最多 4 个"),                         # too many files
    ([(f"{n}.jpg", padded(jpeg_bytes(seed=n), 60 * KIB)) for n in range(3)], "合计超过 160 KB"),  # over 160 KB in all
])
def test_a_refused_upload_is_named_beside_the_field_and_stores_nothing(app, zhang, record_task, evidence_dir,
                                                                       files, message):
    task_id = record_task()
    before = stored(app, evidence_dir)
    response = submit(zhang, task_id, files)
    assert response.status_code == 422
    assert message in field_error(response.text)
    assert stored(app, evidence_dir) == before
    assert task_state(app, task_id) != "completed"


def test_a_refused_upload_keeps_the_files_the_form_already_carried(app, zhang, record_task, evidence_dir):
    task_id = record_task()
    submit(zhang, task_id, [("签到表.jpg", JPEG)], form=dict(GOOD_RECORD, youth_count="0"))
    [staged] = rows(app)
    response = submit(zhang, task_id, [("x.jpg", EXE)], form=dict(GOOD_RECORD, evidence=staged.stored_name))
    assert response.status_code == 422 and "按文件内容判断" in field_error(response.text)
    assert f'value="{staged.stored_name}" checked' in response.text
    assert stored(app, evidence_dir)[0] == 1


def test_a_png_declared_as_html_is_stored_and_served_as_a_png(app, zhang, record_task):
    task_id = record_task()
    assert submit(zhang, task_id, [("page.html", PNG, "text/html")]).status_code == 302
    [row] = rows(app)
    assert row.content_type == "image/png"
    served = zhang.get(f"/evidence/{row.stored_name}")
    assert served.headers["Content-Type"] == "image/png" and served.headers["X-Content-Type-Options"] == "nosniff"


def test_refs_the_cadre_may_not_use_are_refused(app, zhang, record_task, clock, evidence_dir):
    task_id = record_task()
    with app.app_context():  # li's staged photo: its name is not zhang's to submit
        settings = EvidenceSettings(directory=evidence_dir)
        other = store_evidence(db.session, JPEG, "li.jpg", "li", clock.now(), settings).stored_name
        db.session.commit()
    for ref in (other, "../../etc/passwd", "0" * 32, "签到表.jpg"):
        response = submit(zhang, task_id, [("new.jpg", JPEG)], form=dict(GOOD_RECORD, evidence=ref))
        assert response.status_code == 422 and "已失效" in field_error(response.text)
    assert stored(app, evidence_dir)[0] == 1 and task_state(app, task_id) != "completed"


# ------------------------------------------------------------------------------------- hostile names

HOSTILE_NAMES = ["../../etc/passwd", "..\\..\\boot.ini", "/etc/passwd", "C:\\Windows\\win.ini", "a\x00b.jpg",
                 "\u202egpj.exe", "照" * 10_000 + ".jpg", "...", " . . ", "CON.jpg", "NUL", "aux.png"]


def test_hostile_names_are_only_displayed_never_used_as_paths(app, zhang, record_task, evidence_dir, tmp_path):
    task_id = record_task()
    outside_before = {p for p in tmp_path.rglob("*") if evidence_dir not in p.parents and p != evidence_dir}
    for start in range(0, len(HOSTILE_NAMES), 4):  # four files a record; the failed form stages them
        names = HOSTILE_NAMES[start:start + 4]
        response = submit(zhang, task_id, [(name, JPEG, "image/jpeg") for name in names],
                          form=dict(GOOD_RECORD, youth_count="0"))
        assert response.status_code == 422, response.text
    found = rows(app)
    assert len(found) == len(HOSTILE_NAMES)
    for row in found:
        name = row.original_name
        assert 0 < len(name) <= 255 and not any(c in name for c in "/\\\x00\u202e\r\n")
        assert not name.startswith(".") and name.strip() == name
        assert re.fullmatch(r"[0-9a-f]{32}", row.stored_name)
    # (The multipart parser reads a backslash as an escape: "C:\\Windows\\win.ini" arrives as "C:Windowswin.ini".)
    assert {r.original_name for r in found} >= {"passwd", "boot.ini", "ab.jpg", "gpj.exe", "file.jpg", "CON.jpg",
                                                "NUL", "aux.png"}
    files = stored(app, evidence_dir)[1]
    assert sorted(f"{r.stored_name[:2]}/{r.stored_name}" for r in found) == files  # nothing else, nowhere else
    outside_after = {p for p in tmp_path.rglob("*") if evidence_dir not in p.parents and p != evidence_dir}
    assert outside_after == outside_before
    for row in found:
        disposition = zhang.get(f"/evidence/{row.stored_name}").headers["Content-Disposition"]
        assert "\n" not in disposition and "\r" not in disposition and "/" not in disposition.split("filename*")[0]


def test_a_line_break_in_a_name_cannot_inject_a_header(app, zhang, record_task, evidence_dir):
    """Browsers escape CR LF in names; a hand-made part that does not ends up as a plain field, refused."""
    response = submit(zhang, record_task(), [("photo.jpg\r\nContent-Type: text/html", JPEG)])
    assert response.status_code == 422 and "已失效" in field_error(response.text)
    assert stored(app, evidence_dir) == (0, [])


# ------------------------------------------------------------------------- odd requests and wrong people

def test_multipart_without_a_file_and_an_empty_file_input_complete_without_evidence(app, zhang, record_task,
                                                                                    evidence_dir):
    assert submit(zhang, record_task()).status_code == 302                          # no file part at all
    assert submit(zhang, record_task(), [("", b"")]).status_code == 302             # the empty input a browser sends
    assert stored(app, evidence_dir) == (0, [])


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(app, zhang, record_task, evidence_dir):
    task_id = record_task()
    response = submit(zhang, task_id, [("a.jpg", JPEG)], csrf=False)
    assert response.status_code == 400 and "表单已过期或来源不明" in response.text
    assert stored(app, evidence_dir) == (0, []) and task_state(app, task_id) != "completed"


@pytest.mark.parametrize("username", ["li", "wang", "J_org"])
def test_another_persons_task_is_refused_and_stores_nothing(app, record_task, evidence_dir, username):
    task_id = record_task()
    other = client_of(app, username)
    token = csrf_token(other, "/")
    response = other.post(f"/tasks/{task_id}/complete", content_type="multipart/form-data",
                          data={**GOOD_RECORD, "csrf_token": token, "evidence": [(io.BytesIO(JPEG), "a.jpg")]})
    assert response.status_code in (403, 404)
    assert stored(app, evidence_dir) == (0, []) and task_state(app, task_id) != "completed"


def test_a_task_already_done_is_a_409_and_stores_nothing(app, zhang, record_task, evidence_dir):
    task_id = record_task()
    token = csrf_token(zhang, f"/tasks/{task_id}")  # the page was open…
    assert submit(zhang, task_id, [("a.jpg", JPEG)]).status_code == 302  # …and submitted in another tab
    before = stored(app, evidence_dir)
    response = zhang.post(f"/tasks/{task_id}/complete", content_type="multipart/form-data",
                          data={**GOOD_RECORD, "csrf_token": token, "evidence": [(io.BytesIO(PNG), "b.png")]})
    assert response.status_code == 409
    assert stored(app, evidence_dir) == before


def test_an_oversized_request_is_a_friendly_413_and_stores_nothing(app, zhang, record_task, evidence_dir):
    assert app.config["MAX_CONTENT_LENGTH"] == REQUEST_LIMIT
    task_id = record_task()
    big = [(f"{n}.jpg", padded(jpeg_bytes(seed=n), 60 * KIB)) for n in range(4)]  # 240 KB > 224 KB
    response = submit(zhang, task_id, big)
    assert response.status_code == 413
    assert "提交的内容过大，未保存任何文件" in response.text and "每个文件不超过" in response.text
    as_json = submit(zhang, task_id, big, headers={"Accept": "application/json"})
    assert as_json.status_code == 413 and as_json.headers["Content-Type"] == "application/problem+json"
    detail = as_json.get_json()["detail"]
    assert "提交的内容过大" in detail and "larger than 229,376 bytes" in detail
    assert stored(app, evidence_dir) == (0, []) and task_state(app, task_id) != "completed"


def test_too_many_parts_is_a_413_not_a_500(app, zhang, record_task, evidence_dir):
    task_id = record_task()
    response = submit(zhang, task_id, [(f"{n}.jpg", b"x") for n in range(1100)])
    assert response.status_code == 413
    assert stored(app, evidence_dir) == (0, [])


# ------------------------------------------------------------------------------------ who may download

def test_only_the_right_people_download(app, zhang, record_task, clock, evidence_dir):
    task_id = record_task()
    submit(zhang, task_id, [("a.jpg", JPEG)], form=dict(GOOD_RECORD, youth_count="0"))
    [staged] = rows(app)
    assert zhang.get(f"/evidence/{staged.stored_name}").status_code == 200
    assert client_of(app, "S_org").get(f"/evidence/{staged.stored_name}").status_code == 403  # staged: uploader only
    submit(zhang, task_id, form=dict(GOOD_RECORD, evidence=staged.stored_name))
    assert client_of(app, "S_org").get(f"/evidence/{staged.stored_name}").status_code == 200
    for outsider in ("J_org", "wang", "li"):
        assert client_of(app, outsider).get(f"/evidence/{staged.stored_name}").status_code == 403
    for bad in ("0" * 32, "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", staged.stored_name.upper()):
        assert zhang.get(f"/evidence/{bad}").status_code == 404
    assert app.test_client().get(f"/evidence/{staged.stored_name}").status_code == 302  # sign in first


def test_the_spot_check_inspector_sees_the_records_evidence(app, league, clock, evidence_dir):
    with app.app_context():
        engine = app.extensions["lianqing_engine"]
        engine.deploy_file(db.session, BPMN_DIR / "spot_check.bpmn")
        settings = EvidenceSettings(directory=evidence_dir)
        photo = store_evidence(db.session, JPEG, "团课合影.jpg", "zhang", clock.now(), settings)
        cadre = db.session.scalar(select(Cadre).where(Cadre.code == "c-zhang"))
        record_activity(db.session, organisation=db.session.get(Organisation, cadre.organisation_id),
                        kind="league_lecture", held_on="2026-04-20", place="青年之家", youth_count=12,
                        description="讲了一次团课", now=clock.now(), cadre=cadre, evidence=[photo.stored_name])
        start_spot_checks(db.session, engine, "2026-04", SpotCheckSettings(fraction=Decimal(1)))
        db.session.commit()
        check = db.session.scalar(select(HumanTask).where(HumanTask.process_id == "spot_check"))
        check_id, instance_id, name = check.id, check.instance_id, photo.stored_name
    inspector = client_of(app, "S_insp")
    for page in (inspector.get(f"/tasks/{check_id}").text, inspector.get(f"/instances/{instance_id}").text):
        assert "团课合影.jpg" in page and f"/evidence/{name}" in page
    assert inspector.get(f"/evidence/{name}").data == JPEG
    assert client_of(app, "S_org").get(f"/evidence/{name}").status_code == 200   # the cadre's organiser
    outsider = client_of(app, "J_org")
    assert outsider.get(f"/evidence/{name}").status_code == 403


# ------------------------------------------------------------------------------ abandoned files go

def test_files_nobody_submitted_are_deleted_after_a_day(app, zhang, record_task, database_url, clock, evidence_dir,
                                                        monkeypatch):
    task_id = record_task()
    submit(zhang, task_id, [("kept.jpg", JPEG)])                                       # completed: stays
    other = record_task()
    submit(zhang, other, [("left.jpg", PNG)], form=dict(GOOD_RECORD, youth_count="0"))  # abandoned form
    kept, left = rows(app)
    assert kept.instance_id is not None and left.instance_id is None
    monkeypatch.setenv("LIANQING_EVIDENCE_DIR", str(evidence_dir))
    with inprocess_queue(database_url, clock, periodic_jobs=("evidence.discard_abandoned",)) as queue:
        clock.advance(timedelta(hours=23))
        assert queue.tick() == ["evidence.discard_abandoned"]
        queue.drain(30)
        assert stored(app, evidence_dir)[0] == 2                    # not a day old yet
        clock.advance(timedelta(hours=2))
        queue.tick()
        queue.drain(30)
        assert not queue.failed
    assert [row.stored_name for row in rows(app)] == [kept.stored_name]
    assert stored(app, evidence_dir)[1] == [f"{kept.stored_name[:2]}/{kept.stored_name}"]
    # The cadre who comes back to the old form is told to upload again.
    response = submit(zhang, other, [], form=dict(GOOD_RECORD, evidence=left.stored_name))
    assert response.status_code == 422 and "已失效" in field_error(response.text)


def test_a_task_completed_through_the_api_links_the_files_staged_on_the_page(app, zhang, record_task, clock):
    """The mobile client may finish what the page began: the completion links the completer's staged files."""
    from workflows.api_tokens import SCOPES, create_token
    from workflows.models import User
    task_id = record_task()
    submit(zhang, task_id, [("a.jpg", JPEG)], form=dict(GOOD_RECORD, youth_count="0"))
    [staged] = rows(app)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "zhang"))
        secret = create_token(db.session, user, "phone", list(SCOPES), clock.now(), 30).secret
        db.session.commit()
    api, auth = app.test_client(), {"Authorization": f"Bearer {secret}"}
    etag = api.get(f"/api/v1/tasks/{task_id}", headers=auth).headers["ETag"]
    data = dict(GOOD_RECORD, evidence=[staged.stored_name, "会议记录.pdf"])  # a typed name stays text
    response = api.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers={**auth, "If-Match": etag})
    assert response.status_code == 200, response.text
    [linked] = rows(app)
    assert linked.instance_id is not None
