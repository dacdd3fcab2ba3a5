"""Evidence of recorded work: uploads checked by content, sized, stored safely, hashed, read only by the right people;
and no activity record without evidence ("data without a work process" is forbidden)."""
from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import select

from engine.errors import NotAllowed, NotFound, WorkflowFailed
from engine.services import ServiceCall
from workflows.activities import record_activity
from workflows.evidence import (
    JPEG,
    MP4,
    PDF,
    PNG,
    EvidenceFile,
    EvidenceRefused,
    EvidenceSettings,
    display_name,
    evidence_of,
    open_evidence,
    sniff_content_type,
    store_evidence,
    verify_evidence,
)
from workflows.models import Activity
from workflows.roles import load_actor
from workflows.services import registry

JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x02" * 200
PDF_BYTES = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
MP4_BYTES = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x03" * 100
HTML_BYTES = b"<html><script>alert(document.cookie)</script></html>"
SVG_BYTES = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 60


@pytest.fixture
def settings(tmp_path):
    """Evidence under tmp/instance/evidence, the web root at tmp/web/static; small limits to test them.

    The byte strings here only start like their types, so the wholeness check (tested with real files in
    tests/web/test_evidence_upload.py) is off.
    """
    (tmp_path / "web" / "static").mkdir(parents=True)
    return EvidenceSettings(directory=tmp_path / "instance" / "evidence", web_root=tmp_path / "web" / "static",
                            max_file_bytes=1024, max_record_bytes=600, max_files_per_record=3, check_whole=False)


def store(session, settings, clock, content, name="photo.jpg", by="zhang", instance_id=None):
    return store_evidence(session, content, name, by, clock.now(), settings, instance_id=instance_id)


def stored_files(settings):
    return sorted(p for p in settings.directory.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------- type by content

@pytest.mark.parametrize("content,expected", [(JPEG_BYTES, JPEG), (PNG_BYTES, PNG), (PDF_BYTES, PDF), (MP4_BYTES, MP4),
                                              (HTML_BYTES, None), (SVG_BYTES, None), (EXE_BYTES, None), (b"", None),
                                              (b"\x00\x00\x00\x18ftypqt  ", None)])
def test_the_type_is_read_from_the_magic_bytes(content, expected):
    assert sniff_content_type(content[:16]) == expected


def test_the_name_and_declared_type_do_not_decide_the_type(sessions, clock, league, settings):
    with sessions() as session:
        png_called_pdf = store(session, settings, clock, PNG_BYTES, name="report.pdf")
        assert (png_called_pdf.content_type, png_called_pdf.original_name) == (PNG, "report.pdf")
        for content, name in [(HTML_BYTES, "photo.jpg"), (SVG_BYTES, "sign-in.png"), (EXE_BYTES, "minutes.pdf")]:
            with pytest.raises(EvidenceRefused, match="按文件内容判断"):
                store(session, settings, clock, content, name=name)
        assert len(stored_files(settings)) == 1


def test_an_allowed_type_list_can_leave_video_out(sessions, clock, league, settings):
    no_video = EvidenceSettings(directory=settings.directory, allowed_types=(JPEG, PNG, PDF))
    with sessions() as session, pytest.raises(EvidenceRefused, match="video/mp4|application/pdf"):
        store(session, no_video, clock, MP4_BYTES, name="clip.mp4")


# ---------------------------------------------------------------------------------------- size limits

def test_size_limits_per_file_and_per_record(sessions, clock, league, settings):
    with sessions() as session:
        with pytest.raises(EvidenceRefused, match="大小限制"):
            store(session, settings, clock, JPEG_BYTES + b"\x00" * 1024)
        with pytest.raises(EvidenceRefused, match="文件为空"):
            store(session, settings, clock, b"")
        store(session, settings, clock, JPEG_BYTES, instance_id=7)   # ~210 bytes
        store(session, settings, clock, PNG_BYTES, instance_id=7)    # ~215 bytes
        with pytest.raises(EvidenceRefused, match="合计不能超过"):  # 600 bytes a record
            store(session, settings, clock, JPEG_BYTES, instance_id=7)
        store(session, settings, clock, PDF_BYTES, instance_id=7)    # small: still fits
        with pytest.raises(EvidenceRefused, match="最多 3 个"):
            store(session, settings, clock, PDF_BYTES, instance_id=7)
        store(session, settings, clock, JPEG_BYTES, instance_id=8)   # another record has its own allowance
        assert len(stored_files(settings)) == 4


def test_a_stream_is_read_only_up_to_the_limit(sessions, clock, league, settings):
    class Endless:
        def __init__(self):
            self.read_sizes = []

        def read(self, size=-1):
            self.read_sizes.append(size)
            return b"\xff\xd8\xff" + b"\x00" * (size - 3)

    stream = Endless()
    with sessions() as session, pytest.raises(EvidenceRefused):
        store(session, settings, clock, stream)
    assert stream.read_sizes == [settings.max_file_bytes + 1]


# ---------------------------------------------------------------------------- names, paths, storage

@pytest.mark.parametrize("given,shown", [
    ("../../etc/passwd", "passwd"),
    ("/var/www/static/photo.jpg", "photo.jpg"),
    ("C:\\Users\\x\\..\\..\\evil.png", "evil.png"),
    ("a\x00b.jpg", "ab.jpg"),
    ("\u202egpj.exe", "gpj.exe"),             # right-to-left override dropped
    ("zero\u200bwidth.png", "zerowidth.png"),
    ("..", "file.jpg"),
    ("", "file.jpg"),
    ("   .hidden.jpg", "hidden.jpg"),
    ("签到表（第一页）.jpg", "签到表(第一页).jpg"),  # NFKC: full-width brackets become plain ones
    ("ｆｕｌｌ／ｗｉｄｔｈ.jpg", "width.jpg"),   # full-width slash is a slash after NFKC
])
def test_display_names_are_sanitised(given, shown):
    assert display_name(given, JPEG) == shown


def test_a_long_name_keeps_its_extension():
    shown = display_name("照" * 300 + ".jpeg", JPEG)
    assert len(shown) <= 255 and shown.endswith(".jpeg")


@pytest.mark.parametrize("name", ["../../../escape.jpg", "/tmp/absolute.jpg", "x\x00.jpg", "..\\..\\win.jpg",
                                  "\u202eevil.jpg"])
def test_path_tricks_in_the_name_never_reach_the_file_system(sessions, clock, league, settings, tmp_path, name):
    before = set(tmp_path.rglob("*"))
    with sessions() as session:
        row = store(session, settings, clock, JPEG_BYTES, name=name)
    created = set(tmp_path.rglob("*")) - before
    stored = [p for p in created if p.is_file()]
    assert len(stored) == 1
    path = stored[0]
    assert path.name == row.stored_name and len(row.stored_name) == 32 and int(row.stored_name, 16) >= 0
    assert path.parent == settings.directory.resolve() / row.stored_name[:2]
    assert "/" not in row.original_name and "\x00" not in row.original_name and "\u202e" not in row.original_name


def test_files_are_stored_outside_the_web_root_under_random_names(sessions, clock, league, settings):
    with sessions() as session:
        first = store(session, settings, clock, JPEG_BYTES, name="photo.jpg")
        second = store(session, settings, clock, JPEG_BYTES, name="photo.jpg")
        assert first.stored_name != second.stored_name
    for path in stored_files(settings):
        assert settings.web_root.resolve() not in path.resolve().parents
        assert "photo" not in str(path)
        assert oct(path.stat().st_mode & 0o777) == oct(0o640)
    inside = EvidenceSettings(directory=settings.web_root / "uploads", web_root=settings.web_root)
    with sessions() as session, pytest.raises(EvidenceRefused, match="web root"):
        store(session, inside, clock, JPEG_BYTES)
    assert not (settings.web_root / "uploads").exists()


def test_the_sha256_is_recorded_and_checked(sessions, clock, league, settings):
    with sessions() as session:
        row = store(session, settings, clock, PDF_BYTES, name="minutes.pdf")
        session.commit()
        row = session.scalar(select(EvidenceFile).where(EvidenceFile.id == row.id))
        assert row.sha256 == hashlib.sha256(PDF_BYTES).hexdigest() and row.size == len(PDF_BYTES)
        assert (row.uploaded_by, row.uploaded_at, row.content_type) == ("zhang", clock.now(), PDF)
        assert verify_evidence(row, settings)
        [path] = stored_files(settings)
        path.write_bytes(PDF_BYTES.replace(b"Catalog", b"Catalag"))
        assert not verify_evidence(row, settings)
        os.remove(path)
        assert not verify_evidence(row, settings)


# ------------------------------------------------------------------------------------ reading a file

def test_only_authorised_readers_open_a_stored_file(sessions, clock, league, settings):
    with sessions() as session:
        row = store(session, settings, clock, JPEG_BYTES, name="photo.jpg", by="zhang", instance_id=41)
        activity = record_activity(session, organisation=league.orgs["qd-sn"], kind="league_lecture",
                                   held_on="2026-05-10", place="团委", youth_count=12, description="讲了一堂团课",
                                   now=clock.now(), cadre=session.merge(league.cadres["zhang"]),
                                   evidence=[row.stored_name], instance_id=41)
        session.commit()
        for reader in ("zhang", "S_insp", "S_org", "Q_org", "P_admin"):  # the cadre, and staff over qd-sn
            found, handle = open_evidence(session, row.stored_name, load_actor(session, reader), settings)
            with handle:
                assert handle.read() == JPEG_BYTES and found.activity_id == activity.id
        for stranger in ("wang", "li", "J_org"):  # another cadre, a cadre below, staff of another city
            with pytest.raises(NotAllowed):
                open_evidence(session, row.stored_name, load_actor(session, stranger), settings)
        with pytest.raises(NotFound):
            open_evidence(session, "0" * 32, load_actor(session, "zhang"), settings)
        with pytest.raises(NotFound):
            open_evidence(session, "../../etc/passwd", load_actor(session, "zhang"), settings)


def test_an_unattached_upload_is_visible_only_to_its_uploader(sessions, clock, league, settings):
    with sessions() as session:
        row = store(session, settings, clock, PNG_BYTES, by="li")
        session.commit()
        _found, handle = open_evidence(session, row.stored_name, load_actor(session, "li"), settings)
        handle.close()
        with pytest.raises(NotAllowed):
            open_evidence(session, row.stored_name, load_actor(session, "S_org"), settings)


# ----------------------------------------------------------------------------- records need evidence

def activity_call(session, clock, instance_id=None):
    return ServiceCall(session=session, instance_id=instance_id, organisation_id="qd-sn", now=clock.now(), task_data={})


RECORD = {"kind": "league_lecture", "date": "2026-05-10", "place": "市南区团委", "youth_count": 20,
          "description": "讲了一堂主题团课", "cadre": "zhang"}


@pytest.mark.parametrize("change,missing", [({"evidence": []}, "照片或文件"), ({}, "照片或文件"),
                                            ({"evidence": ["  "]}, "照片或文件"),
                                            ({"evidence": ["x.jpg"], "description": " "}, "活动过程说明"),
                                            ({"evidence": ["x.jpg"], "youth_count": 0}, "参与青年人数")])
def test_a_record_without_evidence_is_refused(sessions, clock, league, change, missing):
    with sessions() as session:
        with pytest.raises(EvidenceRefused, match=missing) as refused:
            registry.call("record_activity", activity_call(session, clock), {**RECORD, **change})
        assert "有数据无过程" in str(refused.value) and "evidence" in str(refused.value)
        assert session.scalar(select(Activity.id)) is None


def test_stored_files_are_attached_to_the_record_they_prove(sessions, clock, league, settings):
    with sessions() as session:
        photo = store(session, settings, clock, JPEG_BYTES, name="合影.jpg", instance_id=5)
        sheet = store(session, settings, clock, PDF_BYTES, name="签到表.pdf", instance_id=5)
        elsewhere = store(session, settings, clock, PNG_BYTES, name="别的活动.png", instance_id=6)
        result = registry.call("record_activity", activity_call(session, clock, instance_id=5),
                               {**RECORD, "evidence": [photo.stored_name, sheet.stored_name, elsewhere.stored_name,
                                                       "手写的文件名.jpg"]})
        session.commit()
        files = evidence_of(session, result["activity_id"])
        assert [f.original_name for f in files] == ["合影.jpg", "签到表.pdf"]  # not another instance's upload
        assert session.get(EvidenceFile, elsewhere.id).activity_id is None
        assert session.get(Activity, result["activity_id"]).evidence[-1] == "手写的文件名.jpg"


def test_a_process_cannot_record_an_activity_without_evidence(sessions, clock, league, league_engine):
    """Through a BPMN service task the refusal is a failed step: the task stays open, nothing is stored."""
    from pathlib import Path
    bpmn = Path(__file__).resolve().parents[2] / "bpmn" / "service_month.bpmn"
    with sessions() as session:
        league_engine.deploy_file(session, bpmn)
        instance = league_engine.start(session, "service_month",
                                       {"cadre_assignee": "zhang", "due_at": "2026-06-01T00:00:00+08:00",
                                        "remind_at": "2026-05-25T00:00:00+08:00"}, organisation_id="qd-sn")
        session.commit()
        [task_id] = instance.new_task_ids
        data = {"services": ["走访慰问困难青年"], "description": "走访慰问困难青年，帮助解决实际困难。",
                "service_from": "2026-05-02", "service_to": "2026-05-03", "place": "市南区", "youth_helped": 5,
                "difficulties_solved": 1, "difficulties": ["帮助一名青年找到实习岗位"], "evidence": ["  "]}
        with pytest.raises(WorkflowFailed, match="有数据无过程"):
            league_engine.complete_task(session, task_id, data, "zhang")
        session.rollback()
        assert session.scalar(select(Activity.id)) is None
