"""Campaign launch: one instance per target over a subtree, idempotent relaunch and resume, cancel, scheduling."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import NotAllowed, TaskAlreadyCompleted, WorkflowFailed
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.job_support import inprocess_queue
from workflows import campaign_launch
from workflows.campaign_launch import (cancel_campaign, launch_chunk, launch_progress, resume_campaign,
                                       run_launch_chunk)
from workflows.campaigns import CampaignChunk, CampaignTarget, campaign_by_id
from workflows.roles import load_actor

from .campaign_support import (REPORT, WINDOW_START, RecordingQueue, add_cadres, after, cadre_keys, campaign_row,
                               deploy, instances_of, launch, new_campaign, open_task_count, target_instances)


@pytest.fixture
def deployed(sessions, league, league_engine):
    deploy(sessions, league_engine, "congress_study")


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 4 targets, so that a small league has several."""
    monkeypatch.setattr(campaign_launch, "CHUNK_SIZE", 4)


@pytest.fixture
def crowd(sessions, clock, league):
    """22 more cadres in 青岛 (市南区 and its street committee) and 5 in 济南."""
    return {"qd-sn": add_cadres(sessions, "qd-sn", 7, "sn", clock.now()),
            "qd-sn-gw": add_cadres(sessions, "qd-sn-gw", 15, "gw", clock.now()),
            "jn-lx": add_cadres(sessions, "jn-lx", 5, "lx", clock.now())}


def assert_one_instance_per_target(sessions, campaign_id, expected_keys):
    targets = target_instances(sessions, campaign_id)
    assert set(targets) == expected_keys
    assert None not in targets.values()
    instances = instances_of(sessions, "congress_study")
    assert sorted(i.id for i in instances) == sorted(targets.values())  # none more, none outside
    assert len({i.business_key for i in instances}) == len(instances)
    return targets, instances


def test_launch_to_a_subtree_creates_exactly_one_instance_per_target(sessions, clock, database_url, league,
                                                                     deployed, small_chunks, crowd):
    campaign_id = new_campaign(sessions, clock, by="Q_org", org="qd")
    with inprocess_queue(database_url, clock, workers=2) as queue:
        chunks = launch(sessions, queue, campaign_id, clock.now())
        queue.drain(60)
        assert not queue.failed
    qingdao = cadre_keys(sessions, "qd", "qd-sn", "qd-sn-gw")
    assert len(qingdao) == 24 and len(chunks) == 6  # zhang, li and 22 more, in chunks of 4
    _targets, instances = assert_one_instance_per_target(sessions, campaign_id, qingdao)
    with sessions() as session:
        # each cadre holds their own task, in their own organisation; 济南 got nothing
        tasks = session.execute(select(HumanTask.assignee, HumanTask.organisation_id)
                                .where(HumanTask.process_id == "congress_study")).all()
        assert len(tasks) == 24 and ("zhang", "qd-sn") in tasks and ("li", "qd-sn-gw") in tasks
        assert not [t for t in tasks if t[0] in ("wang", *crowd["jn-lx"])]
        assert {i.started_by for i in instances} == {"Q_org"}
        campaign = campaign_by_id(session, campaign_id)
        assert (campaign.status, campaign.total_targets) == ("launched", 24)
        assert campaign.launched_at == clock.now() and campaign.launch_finished_at is not None
        progress = launch_progress(session, campaign)
        assert (progress.total, progress.launched, progress.percent, progress.done) == (24, 24, 100, True)
        assert [(c.size, c.launched, c.state) for c in progress.chunks] == [(4, 4, "done")] * 6


def test_relaunch_resume_and_redelivered_chunks_create_nothing_twice(sessions, clock, database_url, league,
                                                                     league_engine, deployed, small_chunks, crowd):
    campaign_id = new_campaign(sessions, clock)
    with inprocess_queue(database_url, clock) as queue:
        chunks = launch(sessions, queue, campaign_id, clock.now())
        queue.drain(60)
        before = target_instances(sessions, campaign_id)
        assert launch(sessions, queue, campaign_id, clock.now()) == []  # launching again: nothing left to do
        with sessions() as session:
            assert resume_campaign(session, queue, load_actor(session, "P_org"), campaign_by_id(session, campaign_id),
                                   clock.now()) == []
        queue.enqueue_many("campaign.launch_chunk", [{"campaign_id": campaign_id, "chunk": n} for n in chunks])
        queue.drain(60)  # every chunk delivered a second time
        assert not queue.failed
    for number in chunks:  # and a third time, straight
        with sessions() as session:
            assert run_launch_chunk(session, league_engine, campaign_id, number) == 0
    assert target_instances(sessions, campaign_id) == before
    assert_one_instance_per_target(sessions, campaign_id, cadre_keys(sessions, "prov", "qd", "qd-sn", "qd-sn-gw",
                                                                     "jn", "jn-lx"))


def test_resume_after_a_crash_half_way_launches_only_what_is_missing(sessions, clock, database_url, league,
                                                                    league_engine, deployed, small_chunks, crowd):
    campaign_id = new_campaign(sessions, clock)
    lost = RecordingQueue()  # the worker never came: chunks were enqueued and lost
    chunks = launch(sessions, lost, campaign_id, clock.now())
    assert [p["chunk"] for _n, p in lost.jobs] == chunks and len(chunks) == 8  # 30 cadres
    for number in chunks[:3]:  # a worker ran three chunks…
        with sessions() as session:
            assert run_launch_chunk(session, league_engine, campaign_id, number) == 4
    with sessions() as session:  # …and died half-way through the fourth, before its commit
        assert launch_chunk(session, league_engine, campaign_id, chunks[3], clock.now()) == 4
        session.rollback()
    launched = {k: v for k, v in target_instances(sessions, campaign_id).items() if v is not None}
    assert len(launched) == 12 and campaign_row(sessions, campaign_id).status == "launching"
    with inprocess_queue(database_url, clock) as queue:
        with sessions() as session:
            resumed = resume_campaign(session, queue, load_actor(session, "P_org"),
                                      campaign_by_id(session, campaign_id), clock.now())
        queue.drain(60)
        assert not queue.failed
    assert resumed == chunks[3:]
    targets, _ = assert_one_instance_per_target(sessions, campaign_id, cadre_keys(
        sessions, "prov", "qd", "qd-sn", "qd-sn-gw", "jn", "jn-lx"))
    assert {k: targets[k] for k in launched} == launched  # what was launched before the crash was kept
    assert campaign_row(sessions, campaign_id).status == "launched"


def test_the_same_chunk_run_twice_at_once_starts_each_target_once(sessions, clock, league, league_engine, deployed,
                                                                  small_chunks, crowd):
    campaign_id = new_campaign(sessions, clock)
    chunks = launch(sessions, RecordingQueue(), campaign_id, clock.now())
    results, errors = [], []

    def run(number):
        try:
            with sessions() as session:
                results.append(run_launch_chunk(session, league_engine, campaign_id, number))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(number,)) for number in chunks for _twice in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(results) == 30 and results.count(0) >= len(chunks)  # one run of each chunk found nothing to do
    assert_one_instance_per_target(sessions, campaign_id, cadre_keys(sessions, "prov", "qd", "qd-sn", "qd-sn-gw",
                                                                     "jn", "jn-lx"))


def test_cancel_ends_every_open_instance_and_records_who_and_why(sessions, clock, database_url, league,
                                                                league_engine, deployed, small_chunks, crowd):
    campaign_id = new_campaign(sessions, clock, by="Q_org", org="qd")
    with inprocess_queue(database_url, clock) as queue:
        launch(sessions, queue, campaign_id, clock.now())
        queue.drain(60)
        targets = target_instances(sessions, campaign_id)
        with sessions() as session:  # 张伟 reported before the cancel: his instance stays completed
            [task] = session.scalars(select(HumanTask).where(HumanTask.assignee == "zhang"))
            league_engine.complete_task(session, task.id, REPORT, "zhang")
            session.commit()
        with sessions() as session:
            with pytest.raises(NotAllowed):  # 市南 may not cancel 青岛's campaign
                cancel_campaign(session, queue, load_actor(session, "S_org"), campaign_by_id(session, campaign_id),
                                "不需要了", clock.now())
            cancel_campaign(session, queue, load_actor(session, "Q_org"), campaign_by_id(session, campaign_id),
                            "上级通知活动延期举行", clock.now())
        queue.drain(60)
        assert not queue.failed
        with sessions() as session, pytest.raises(TaskAlreadyCompleted):
            cancel_campaign(session, queue, load_actor(session, "Q_org"), campaign_by_id(session, campaign_id),
                            "再撤销一次", clock.now())
    assert target_instances(sessions, campaign_id) == targets  # the history is kept
    with sessions() as session:
        campaign = campaign_by_id(session, campaign_id)
        assert (campaign.status, campaign.cancel_reason, campaign.cancelled_by, campaign.cancelled_at) == \
            ("cancelled", "上级通知活动延期举行", "Q_org", clock.now())
        statuses = dict(session.execute(select(ProcessInstance.status, func.count()).where(
            ProcessInstance.id.in_(list(targets.values()))).group_by(ProcessInstance.status)).all())
        assert statuses == {"completed": 1, "cancelled": 23}
        assert open_task_count(sessions, targets.values()) == 0
        cancelled_tasks = session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id.in_(list(targets.values())), HumanTask.state == "cancelled"))
        assert cancelled_tasks == 23
        audits = session.execute(select(AuditEvent.actor, AuditEvent.detail).where(AuditEvent.kind == "cancelled")).all()
        assert len(audits) == 23 and all(actor == "Q_org" and "上级通知活动延期举行" in detail for actor, detail in audits)


def test_a_cancelled_campaign_launches_no_chunk_left_in_the_queue(sessions, clock, league, league_engine, deployed,
                                                                  small_chunks, crowd):
    campaign_id = new_campaign(sessions, clock)
    lost = RecordingQueue()
    chunks = launch(sessions, lost, campaign_id, clock.now())
    with sessions() as session:
        assert run_launch_chunk(session, league_engine, campaign_id, chunks[0]) == 4
    with sessions() as session:
        numbers = cancel_campaign(session, lost, load_actor(session, "P_org"), campaign_by_id(session, campaign_id),
                                  "参数有误，重新发起", clock.now())
    assert numbers == chunks
    for number in chunks:  # the launch jobs still in the queue arrive after the cancel
        with sessions() as session:
            assert run_launch_chunk(session, league_engine, campaign_id, number) == 0
    for number in numbers:
        with sessions() as session:
            campaign_launch.run_cancel_chunk(session, league_engine, campaign_id, number)
    assert len([v for v in target_instances(sessions, campaign_id).values() if v]) == 4
    assert {i.status for i in instances_of(sessions, "congress_study")} == {"cancelled"}
    with pytest.raises(TaskAlreadyCompleted):
        launch(sessions, RecordingQueue(), campaign_id, clock.now())


def test_a_scheduled_campaign_waits_for_its_window(sessions, clock, database_url, league, deployed):
    opens = after(WINDOW_START, days=10)
    campaign_id = new_campaign(sessions, clock, start=opens)
    with inprocess_queue(database_url, clock, periodic_jobs=("campaign.launch_due",)) as queue:
        assert launch(sessions, queue, campaign_id, clock.now()) == []  # not yet
        queue.tick()
        queue.drain(30)
        assert campaign_row(sessions, campaign_id).status == "scheduled"
        assert target_instances(sessions, campaign_id) == {}
        clock.set(after(opens, days=-1))
        queue.tick()
        queue.drain(30)
        assert campaign_row(sessions, campaign_id).status == "scheduled"
        clock.set(after(opens, minutes=1))
        queue.tick()
        queue.drain(30)
        assert not queue.failed
    campaign = campaign_row(sessions, campaign_id)
    assert (campaign.status, campaign.launched_at, campaign.total_targets) == ("launched", after(opens, minutes=1), 3)
    assert_one_instance_per_target(sessions, campaign_id, cadre_keys(sessions, "qd-sn", "qd-sn-gw", "jn-lx"))


def test_stale_chunks_are_sent_again_by_the_periodic_job(sessions, clock, database_url, league, deployed,
                                                        small_chunks, crowd):
    campaign_id = new_campaign(sessions, clock)
    launch(sessions, RecordingQueue(), campaign_id, clock.now())  # planned, then the jobs were lost
    with inprocess_queue(database_url, clock, periodic_jobs=("campaign.launch_due",)) as queue:
        queue.tick()
        queue.drain(30)
        assert campaign_row(sessions, campaign_id).status == "launching"  # too early to call them lost
        clock.advance(campaign_launch.STALE_CHUNK_AFTER + timedelta(minutes=1))
        queue.tick()
        queue.drain(60)
        assert not queue.failed
    assert campaign_row(sessions, campaign_id).status == "launched"
    assert None not in target_instances(sessions, campaign_id).values()


def test_a_campaign_over_a_subtree_without_targets_is_launched_empty(sessions, clock, league, deployed):
    campaign_id = new_campaign(sessions, clock, by="S_org", org="qd-sn-gw-1")  # a branch: no cadre works there
    assert launch(sessions, RecordingQueue(), campaign_id, clock.now()) == []
    campaign = campaign_row(sessions, campaign_id)
    assert (campaign.status, campaign.total_targets) == ("launched", 0)


@pytest.mark.parametrize("bulk", [True, False], ids=["start_many", "start"])
def test_a_target_that_cannot_start_is_recorded_and_the_rest_launch(sessions, clock, league, league_engine,
                                                                    deployed, monkeypatch, bulk):
    campaign_id = new_campaign(sessions, clock)
    [chunk] = launch(sessions, RecordingQueue(), campaign_id, clock.now())
    broken = WorkflowFailed("李娜的账号有问题 / broken")
    if bulk:
        real_many = league_engine.start_many

        def start_many(session, definition_id, requests, actor=None):
            names = [r.data.get("cadre_assignee") for r in requests]
            if "li" in names:
                broken.request_index = names.index("li")
                raise broken
            return real_many(session, definition_id, requests, actor)
        monkeypatch.setattr(league_engine, "start_many", start_many)
    else:
        real = league_engine.start

        def start(session, process_id, data=None, *args, **kwargs):
            if data.get("cadre_assignee") == "li":
                raise broken
            return real(session, process_id, data, *args, **kwargs)
        monkeypatch.setattr(league_engine, "start", start)
        monkeypatch.setattr(league_engine, "start_many", None, raising=False)
    with sessions() as session:
        assert run_launch_chunk(session, league_engine, campaign_id, chunk) == 2
    with sessions() as session:
        errors = list(session.scalars(select(CampaignTarget.error).where(CampaignTarget.error.is_not(None))))
        assert errors == ["李娜的账号有问题 / broken"]
        state = session.scalar(select(CampaignChunk.state).where(CampaignChunk.campaign_id == campaign_id))
        assert state == "failed"
        assert campaign_by_id(session, campaign_id).status == "launched"
        assert launch_progress(session, campaign_by_id(session, campaign_id)).failed == 1
    monkeypatch.undo()
    with sessions() as session:  # resuming retries the failed target
        numbers = resume_campaign(session, RecordingQueue(), None, campaign_by_id(session, campaign_id), clock.now())
    assert numbers == [chunk]
    with sessions() as session:
        assert run_launch_chunk(session, league_engine, campaign_id, chunk) == 1
    assert None not in target_instances(sessions, campaign_id).values()
    assert len(instances_of(sessions, "congress_study")) == 3
