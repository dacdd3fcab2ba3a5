"""Monthly spot checks (bpmn/spot_check.bpmn, workflows/spot_checks.py): a reproducible sample per inspection
unit, an idempotent monthly run, the inspector's task, and what a false record costs."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from engine import FormInvalid, NotAllowed
from engine.jobs import JobContext
from engine.models import ProcessInstance
from tests.workflows.campaign_process_helpers import deploy, holding, instance, notifications, only_task, task_data
from workflows.activities import check_quota, record_activity
from workflows.jobs import league_jobs
from workflows.models import Activity, Notification, Organisation
from workflows.organisations import by_code
from workflows.people import new_user
from workflows.points import PointEntry, cadre_score
from workflows.roles import grant_role
from workflows.spot_checks import (
    SpotCheck,
    SpotCheckRound,
    SpotCheckSettings,
    month_days,
    plan_month,
    previous_month,
    record_verdict,
    sample_records,
    sample_size,
    spot_check_summary,
    start_spot_checks,
)

ALL = SpotCheckSettings(fraction=Decimal(1))
FALSE = {"method": "phone", "verdict": "false", "note": "电话联系3名参与青年，均表示当天没有这次活动。"}
TRUE = {"method": "site_visit", "verdict": "true", "note": "实地查看签到表和照片，与青年核实无误。"}
UNREACHABLE = {"method": "phone", "verdict": "unreachable", "note": "拨打两次电话均无人接听。"}


@pytest.fixture
def deployed(sessions, league, league_engine):
    league_engine.clock.set(datetime.fromisoformat("2026-06-02T09:00:00+08:00"))
    with sessions() as session:
        deploy(session, league_engine, "spot_check")
        session.commit()
    return league_engine


def record(session, league, cadre="zhang", held_on="2026-05-10", kind="league_lecture", org=None):
    """Record an activity with evidence (a cadre's record scores in the points ledger)."""
    cadre_row = session.merge(league.cadres[cadre]) if cadre else None
    organisation = by_code(session, org) if org else session.get(Organisation, cadre_row.organisation_id)
    return record_activity(session, organisation=organisation, kind=kind, held_on=held_on, place="青年之家",
                           youth_count=12, description="和青年一起开展活动", cadre=cadre_row,
                           now=datetime.fromisoformat(held_on + "T20:00:00+08:00"), evidence=["签到表.jpg"])


def add_inspector(session, clock, username, code, active=True):
    org = by_code(session, code)
    user = new_user(username, username, clock.now(), organisation=org)
    user.active = active
    session.add(user)
    session.flush()
    grant_role(session, user, "inspector", org)


def spot_task_instances(session):
    return list(session.scalars(select(ProcessInstance.id).where(ProcessInstance.process_id == "spot_check")
                                .order_by(ProcessInstance.id)))


# ---------------------------------------------------------------------------------------- sampling

@pytest.mark.parametrize("population,fraction,minimum,expected", [
    (0, "0.10", 1, 0), (1, "0.10", 1, 1), (9, "0.10", 1, 1), (10, "0.10", 1, 1), (11, "0.10", 1, 2),
    (25, "0.10", 1, 3), (25, "0.5", 1, 13), (3, "1", 1, 3), (30, "0.10", 5, 5), (4, "0.10", 5, 4)])
def test_sample_size_is_a_fraction_rounded_up_with_a_minimum(population, fraction, minimum, expected):
    assert sample_size(population, SpotCheckSettings(fraction=Decimal(fraction), minimum=minimum)) == expected


def test_sampling_is_reproducible_and_changes_with_the_month_and_the_unit():
    settings = SpotCheckSettings()
    ids = list(range(1, 201))
    may = sample_records(ids, "2026-05", "qd-sn", settings)
    assert len(may) == 20 and set(may) <= set(ids) and may == sorted(may)
    assert sample_records(list(reversed(ids)), "2026-05", "qd-sn", settings) == may  # order of the rows is irrelevant
    assert sample_records(ids, "2026-05-31", "qd-sn", settings) == may
    assert sample_records(ids, "2026-06", "qd-sn", settings) != may
    assert sample_records(ids, "2026-05", "jn", settings) != may
    assert may == [1, 10, 33, 37, 41, 44, 45, 60, 77, 81, 91, 99, 110, 115, 116, 122, 154, 155, 162, 171]  # pinned


def test_month_helpers():
    assert month_days("2026-02") == ("2026-02-01", "2026-02-28")
    assert month_days("2026-12") == ("2026-12-01", "2026-12-31")
    assert previous_month(datetime.fromisoformat("2026-06-01T00:30:00+08:00")) == "2026-05"
    assert previous_month(datetime.fromisoformat("2026-05-31T16:30:00+00:00")) == "2026-05"  # June 1st in Beijing
    assert previous_month(datetime.fromisoformat("2026-01-15T00:00:00+08:00")) == "2025-12"
    with pytest.raises(ValueError):
        month_days("2026-13")


def test_records_are_drawn_per_nearest_inspector(sessions, clock, league):
    with sessions() as session:
        may = [record(session, league, "zhang", f"2026-05-{d:02d}") for d in range(1, 13)]
        may += [record(session, league, "li", f"2026-05-{d:02d}") for d in range(1, 9)]
        jinan = [record(session, league, "wang", f"2026-05-{d:02d}") for d in range(1, 6)]
        record(session, league, "zhang", "2026-06-01")
        record(session, league, "zhang", "2026-04-30")
        may[0].revoked_at = clock.now()  # revoked records are not drawn
        session.commit()
        [unit] = plan_month(session, "2026-05")
        assert (unit.unit_code, unit.population, len(unit.activity_ids)) == ("qd-sn", 19, 2)
        assert set(unit.activity_ids) <= {a.id for a in may[1:]}
        add_inspector(session, clock, "J_insp", "jn")
        add_inspector(session, clock, "L_insp", "jn-lx", active=False)  # an inactive inspector makes no unit
        units = {u.unit_code: u for u in plan_month(session, "2026-05")}
        assert set(units) == {"jn", "qd-sn"}
        assert (units["jn"].population, set(units["jn"].activity_ids) <= {a.id for a in jinan}) == (5, True)
        assert plan_month(session, "2026-05") == plan_month(session, "2026-05")


# ------------------------------------------------------------------------------- the monthly run

def test_the_monthly_run_starts_each_check_once(sessions, clock, league, deployed):
    engine = deployed
    with sessions() as session:
        for day in range(1, 21):
            record(session, league, "zhang", f"2026-05-{day:02d}")
        for day in (2, 3):
            record(session, league, "zhang", f"2026-06-{day:02d}")
        session.commit()
        run = start_spot_checks(session, engine, "2026-05")
        session.commit()
        assert (run.units, len(run.started)) == (1, 2)
        again = start_spot_checks(session, engine, "2026-05")
        session.commit()
        assert (again.units, again.started) == (0, [])
        assert session.scalar(select(func.count()).select_from(SpotCheck)) == 2
        [round_row] = session.scalars(select(SpotCheckRound)).all()
        assert (round_row.month, round_row.population, round_row.sample_size) == ("2026-05", 20, 2)

    context = JobContext(session_factory=sessions, engine=engine)
    job = league_jobs.get("spot_checks.monthly")
    assert job.every_seconds is not None
    job.handler(context, {"month": "2026-05"})  # a retry, or a run by hand: nothing new
    job.handler(context, {})                     # June 2nd: within the 3 grace days April is still the month drawn
    with sessions() as session:
        assert len(spot_task_instances(session)) == 2
    engine.clock.set(datetime.fromisoformat("2026-07-04T09:00:00+08:00"))
    job.handler(context, {})                     # July 4th: June is drawn
    job.handler(context, {})
    with sessions() as session:
        assert len(spot_task_instances(session)) == 3
        assert sorted(session.scalars(select(SpotCheckRound.month))) == ["2026-05", "2026-06"]


# --------------------------------------------------------------------------------- the process

def test_a_false_record_is_revoked_its_points_removed_and_people_told(sessions, clock, league, deployed):
    engine = deployed
    with sessions() as session:
        activity = record(session, league, "zhang", "2026-05-12")
        record(session, league, "wang", "2026-05-13")  # Jinan has no inspector: not drawn
        session.commit()
        before = cadre_score(session, league.cadres["zhang"].id, 2026).total
        assert before > 0
        [instance_id] = start_spot_checks(session, engine, "2026-05").started
        session.commit()
        task = only_task(session, instance_id)
        assert holding(session, instance_id) == [("Task_check", "inspector", "qd-sn", "S_insp")]
        assert task.remind_at == engine.clock.now() + timedelta(days=11)
        assert notifications(session) == [("S_insp", "新的待办：抽查核实活动记录")]
        shown = task_data(session, engine, task)["activity"]
        assert (shown["kind_name"], shown["held_on"], shown["cadre_name"], shown["evidence_count"]) == \
            ("讲一次团课", "2026-05-12", "张伟", 1)
        with pytest.raises(NotAllowed):
            engine.complete_task(session, task.id, FALSE, "S_org")
        session.rollback()
        with pytest.raises(FormInvalid):
            engine.complete_task(session, task.id, {"method": "phone", "verdict": "false"}, "S_insp")
        mark = max(session.scalars(select(Notification.id)))
        engine.complete_task(session, task.id, FALSE, "S_insp")
        session.commit()

        done = instance(session, instance_id)
        assert done.status == "completed" and done.data["spot_check"]["revoked"] is True
        session.expire_all()
        revoked = session.get(Activity, activity.id)
        assert revoked.revoked_at is not None and revoked.verified is False
        assert revoked.revoked_reason.startswith("抽查不属实（电话抽查）")
        entries = session.scalars(select(PointEntry).where(PointEntry.source_kind == "activity",
                                                           PointEntry.source_id == str(activity.id))).all()
        assert entries and all(e.revoked_at is not None for e in entries)
        assert cadre_score(session, league.cadres["zhang"].id, 2026).total < before
        assert not check_quota(session, "2026-05-01", "2026-05-31", cadre=league.cadres["zhang"]).count
        told = notifications(session, mark)
        assert sorted(told) == [("S_org", "活动记录经抽查不属实，已撤销：讲一次团课（2026-05-12）"),
                                ("zhang", "活动记录经抽查不属实，已撤销：讲一次团课（2026-05-12）")]
        check = session.scalar(select(SpotCheck).where(SpotCheck.activity_id == activity.id))
        assert (check.verdict, check.method, check.decided_by) == ("false", "phone", "S_insp")

        for code in ("qd-sn", "qd", "prov"):  # the subtree rolls up
            summary = spot_check_summary(session, by_code(session, code), "2026-05")
            assert (summary.sampled, summary.checked, summary.confirmed, summary.false, summary.unreachable) == \
                (1, 1, 0, 1, 0)
        assert spot_check_summary(session, by_code(session, "jn"), "2026-05").sampled == 0
        assert spot_check_summary(session, by_code(session, "qd-sn"), "2026-06").sampled == 0

        # recording the same verdict again changes nothing and tells nobody twice
        record_verdict(session, activity.id, "phone", "false", "again", "S_insp", clock.now())
        session.commit()
        assert len(notifications(session, mark)) == 2


def test_true_unreachable_and_pending_checks_count_in_the_bulletin(sessions, clock, league, deployed):
    engine = deployed
    with sessions() as session:
        activities = [record(session, league, "zhang", "2026-05-10"), record(session, league, "li", "2026-05-11"),
                      record(session, league, "li", "2026-05-12")]
        session.commit()
        started = start_spot_checks(session, engine, "2026-05", ALL).started
        session.commit()
        assert len(started) == 3
        by_activity = {session.scalar(select(SpotCheck.activity_id).where(SpotCheck.instance_id == i)): i
                       for i in started}
        engine.complete_task(session, only_task(session, by_activity[activities[0].id]).id, TRUE, "S_insp")
        engine.complete_task(session, only_task(session, by_activity[activities[1].id]).id, UNREACHABLE, "S_insp")
        session.commit()
        session.expire_all()
        assert session.get(Activity, activities[0].id).verified is True
        assert all(session.get(Activity, a.id).revoked_at is None for a in activities)
        summary = spot_check_summary(session, by_code(session, "qd"), "2026-05")
        assert (summary.sampled, summary.checked, summary.confirmed, summary.false, summary.unreachable,
                summary.pending) == (3, 2, 1, 0, 1, 1)
        grassroots = spot_check_summary(session, by_code(session, "qd-sn-gw"), "2026-05")
        assert (grassroots.sampled, grassroots.unreachable, grassroots.pending) == (2, 1, 1)


def test_checks_are_shared_among_the_units_inspectors_in_turn(sessions, clock, league, deployed):
    engine = deployed
    with sessions() as session:
        for day in range(1, 5):
            record(session, league, "zhang", f"2026-05-{day:02d}")
        add_inspector(session, clock, "S_insp2", "qd-sn")
        session.commit()
        started = start_spot_checks(session, engine, "2026-05", ALL).started
        session.commit()
        assert [holding(session, i)[0][3] for i in started] == ["S_insp", "S_insp2", "S_insp", "S_insp2"]


def test_the_inspector_is_reminded_before_the_check_is_due(sessions, clock, league, deployed):
    engine = deployed
    with sessions() as session:
        record(session, league, "zhang", "2026-05-10")
        session.commit()
        [instance_id] = start_spot_checks(session, engine, "2026-05").started
        session.commit()
        mark = max(session.scalars(select(Notification.id)))
    engine.clock.advance(timedelta(days=11) - timedelta(minutes=1))
    with sessions() as session:
        engine.run_due_timers(session)
        assert notifications(session, mark) == []
    engine.clock.advance(timedelta(minutes=2))
    with sessions() as session:
        engine.run_due_timers(session)
        assert notifications(session, mark) == [("S_insp", "提醒：抽查核实活动记录")]
        assert holding(session, instance_id) == [("Task_check", "inspector", "qd-sn", "S_insp")]


def test_an_organs_false_record_is_told_to_its_organiser(sessions, clock, league, deployed):
    engine = deployed
    with sessions() as session:
        activity = record(session, league, None, "2026-05-20", kind="open_day", org="qd-sn")
        session.commit()
        [instance_id] = start_spot_checks(session, engine, "2026-05").started
        session.commit()
        mark = max(session.scalars(select(Notification.id)))
        engine.complete_task(session, only_task(session, instance_id).id, dict(FALSE, method="site_visit"), "S_insp")
        session.commit()
        assert notifications(session, mark) == [("S_org", "活动记录经抽查不属实，已撤销：机关开放日（2026-05-20）")]
        session.expire_all()
        assert session.get(Activity, activity.id).revoked_reason.startswith("抽查不属实（实地查看）")
