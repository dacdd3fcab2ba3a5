"""Campaign workbooks built by a background job: asked once, built once, fetched by the right people, removed when old.

The jobs run on the in-process queue (tests/job_support.py), drained before each check.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine.errors import NotAllowed, NotFound
from tests.job_support import inprocess_queue
from workflows.campaign_exports import (CLEANUP_JOB, EXPORT_JOB, CampaignExport, ExportNotReady, ExportSettings,
                                        export_settings, file_path, open_export, remove_expired, request_export)
from workflows.campaign_launch import run_launch_chunk
from workflows.campaigns import campaign_by_id
from workflows.organisations import by_code
from workflows.roles import load_actor

from .campaign_support import RecordingQueue, add_cadres, deploy, launch, new_campaign


@pytest.fixture
def settings(tmp_path, monkeypatch) -> ExportSettings:
    """Exports in a temporary directory; the job reads the same environment as the web app."""
    monkeypatch.setenv("LIANQING_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("LIANQING_EXPORT_RETENTION_HOURS", "24")
    return export_settings()


@pytest.fixture
def campaign_id(sessions, clock, league, league_engine):
    """The province's Congress study to 8 cadres (3 of the league, 5 more in 青岛), launched."""
    deploy(sessions, league_engine, "congress_study")
    add_cadres(sessions, "qd-sn-gw", 5, "gw", clock.now())
    campaign_id = new_campaign(sessions, clock)
    for number in launch(sessions, RecordingQueue(), campaign_id, clock.now()):
        with sessions() as session:
            run_launch_chunk(session, league_engine, campaign_id, number)
    return campaign_id


def ask(sessions, clock, who: str, campaign_id: int, code: str) -> tuple[int, bool]:
    with sessions() as session:
        export, new = request_export(session, load_actor(session, who), campaign_by_id(session, campaign_id),
                                     by_code(session, code), 7, clock.now())
        session.commit()
        return export.id, new


def test_the_job_writes_the_workbook_outside_the_web_root_and_marks_it_ready(database_url, sessions, clock,
                                                                             campaign_id, settings, tmp_path):
    export_id, new = ask(sessions, clock, "Q_org", campaign_id, "qd")
    assert new
    with sessions() as session:  # not ready before the job ran
        with pytest.raises(ExportNotReady, match="尚未生成完毕"):
            open_export(session, load_actor(session, "Q_org"), export_id, settings)
    assert ask(sessions, clock, "Q_org", campaign_id, "qd") == (export_id, False)  # asked twice: built once
    with inprocess_queue(database_url, clock) as queue:
        queue.enqueue(EXPORT_JOB, {"export_id": export_id})
        queue.enqueue(EXPORT_JOB, {"export_id": export_id})  # delivered twice: still one whole file
        queue.drain(60)
        assert not queue.failed
    with sessions() as session:
        export, path = open_export(session, load_actor(session, "Q_org"), export_id, settings)
        assert (export.status, export.rows, export.attempts) == ("ready", 7, 1)
        assert export.filename == f"campaign-{campaign_id}-qd.xlsx" and export.size == path.stat().st_size
    assert path.parent == (tmp_path / "exports").resolve() and path.name == f"{export.token}.xlsx"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    book = load_workbook(path, read_only=True)
    people = list(book["明细"].iter_rows(values_only=True))
    assert people[0][:2] == ("对象编号", "团干部") and len(people) == 1 + 7
    assert {row[2] for row in people[1:]} == {"qd-sn", "qd-sn-gw"}


def test_only_who_asked_or_an_organiser_over_the_organisation_may_fetch_it(database_url, sessions, clock,
                                                                          campaign_id, settings):
    export_id, _new = ask(sessions, clock, "S_insp", campaign_id, "qd-sn")  # an inspector may read the numbers
    with inprocess_queue(database_url, clock) as queue:
        queue.enqueue(EXPORT_JOB, {"export_id": export_id})
        queue.drain(60)
    with sessions() as session:
        for who in ("S_insp", "S_org", "Q_org", "P_org"):  # who asked; organisers at and above 市南区
            assert open_export(session, load_actor(session, who), export_id, settings)[0].id == export_id
        for who in ("S_coord", "J_org", "zhang"):  # staff of the county who did not ask; another city; a cadre
            with pytest.raises(NotAllowed, match="只有发起导出的人或该组织的组织者"):
                open_export(session, load_actor(session, who), export_id, settings)
        with pytest.raises(NotAllowed):  # asking needs the right to read the campaign there
            request_export(session, load_actor(session, "J_org"), campaign_by_id(session, campaign_id),
                           by_code(session, "qd"), 7, clock.now())
        with pytest.raises(NotFound):
            open_export(session, load_actor(session, "P_org"), export_id + 100, settings)
        with pytest.raises(NotFound):
            file_path(settings, "../../etc/passwd")


def test_old_exports_and_their_files_are_removed_by_the_periodic_job(database_url, sessions, clock, campaign_id,
                                                                     settings):
    old_id, _ = ask(sessions, clock, "Q_org", campaign_id, "qd")
    with inprocess_queue(database_url, clock, periodic_jobs=(CLEANUP_JOB,)) as queue:
        queue.enqueue(EXPORT_JOB, {"export_id": old_id})
        queue.drain(60)
        clock.advance(timedelta(hours=23))
        new_id, _ = ask(sessions, clock, "P_org", campaign_id, "prov")
        queue.enqueue(EXPORT_JOB, {"export_id": new_id})
        queue.drain(60)
        with sessions() as session:
            old_file = file_path(settings, session.get(CampaignExport, old_id).token)
            new_file = file_path(settings, session.get(CampaignExport, new_id).token)
        assert old_file.is_file() and new_file.is_file()
        clock.advance(timedelta(hours=2))  # the first is 25 hours old, the second 2
        assert CLEANUP_JOB in queue.tick()
        queue.drain(60)
        assert not queue.failed
    assert not old_file.exists() and new_file.is_file()
    with sessions() as session:
        assert list(session.scalars(select(CampaignExport.id))) == [new_id]
        with pytest.raises(NotFound, match="已过期删除"):
            open_export(session, load_actor(session, "Q_org"), old_id, settings)
        assert remove_expired(session, settings, clock.now()) == 0  # idempotent


def test_the_export_directory_must_lie_outside_the_web_root(tmp_path):
    inside = ExportSettings(directory=tmp_path / "static" / "exports", web_root=tmp_path / "static")
    with pytest.raises(ValueError, match="web root"):
        inside.storage_directory()
    assert export_settings({"LIANQING_EXPORT_SYNC_ROWS": "10", "LIANQING_EXPORT_DIR": str(tmp_path / "x"),
                            "LIANQING_EXPORT_RETENTION_HOURS": "2"}) == \
        ExportSettings(directory=tmp_path / "x", sync_rows=10, retention=timedelta(hours=2))
