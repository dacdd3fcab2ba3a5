"""The daily ranking: order and ties at every level, organisations' figures and ranks, pagination, history."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.league import build_league
from workflows import rankings
from workflows.activities import record_activity
from workflows.models import CADRE_ACTIVITY_KINDS, ORGAN_ACTIVITY_KINDS, Activity, Cadre, User, Youth
from workflows.points import award

DAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 20, 0, tzinfo=timezone.utc)


def add_cadre(session, league, username: str, name: str, kind: str, org_code: str) -> Cadre:
    """One more cadre (with an account) at ``org_code``."""
    org = league.orgs[org_code]
    user = User(username=username, display_name=name, organisation_id=org.id, password_hash=None, active=True,
                session_version=1, created_at=NOW)
    session.add(user)
    session.flush()
    cadre = Cadre(user_id=user.id, code=f"c-{username}", name=name, kind=kind, organisation_id=org.id)
    session.add(cadre)
    session.flush()
    league.cadres[username] = cadre
    return cadre


def fixed(points: dict, campaigns: dict | None = None) -> rankings.RankingSources:
    """Sources with the points (by cadre) and campaign completion (by organisation) given."""
    return rankings.RankingSources(points_by_cadre=lambda _s, _y: points,
                                   campaign_completion=lambda _s, _root, _since, _until: campaigns or {})


@pytest.fixture
def world(sessions):
    """The test league plus 赵磊 (full-time) at the 青岛 city committee; points 30 / 30 / 50.5 / 10."""
    with sessions() as session:
        league = build_league(session, NOW - timedelta(days=60))
        add_cadre(session, league, "zhao", "赵磊", "full_time", "qd")
        session.commit()
        c = league.cadres
        league.points = {c["zhang"].id: Decimal("30"), c["li"].id: Decimal("30"), c["wang"].id: Decimal("50.5"),
                         c["zhao"].id: Decimal("10")}
        return league


def names(rows) -> list[tuple[str, int]]:
    return [(row.name, row.rank) for row in rows]


def test_cadres_are_ranked_by_points_with_shared_ranks_at_every_level(sessions, world):
    with sessions() as session:
        result = rankings.compute_rankings(session, DAY, NOW, fixed(world.points))
        session.commit()
        assert (result.cadres, result.organisations) == (4, 7)
        o = world.orgs
        assert names(rankings.cadre_ranking(session, o["prov"], DAY)) == [("王芳", 1), ("张伟", 2), ("李娜", 2),
                                                                          ("赵磊", 4)]
        assert names(rankings.cadre_ranking(session, o["qd"], DAY)) == [("张伟", 1), ("李娜", 1), ("赵磊", 3)]
        assert names(rankings.cadre_ranking(session, o["qd-sn"], DAY)) == [("张伟", 1), ("李娜", 1)]
        assert names(rankings.cadre_ranking(session, o["qd-sn-gw"], DAY)) == [("李娜", 1)]  # ranked on the fly
        assert names(rankings.cadre_ranking(session, o["qd"], DAY, scope="own")) == [("赵磊", 1)]
        assert names(rankings.cadre_ranking(session, o["jn"], DAY)) == [("王芳", 1)]
        first = rankings.cadre_ranking(session, o["prov"], DAY)[0]
        assert first.points == Decimal("50.50") and isinstance(first.points, Decimal)


def test_cadre_pages_and_counts(sessions, world):
    with sessions() as session:
        rankings.compute_rankings(session, DAY, NOW, fixed(world.points))
        o = world.orgs
        assert names(rankings.cadre_ranking(session, o["prov"], DAY, limit=2, offset=1)) == [("张伟", 2), ("李娜", 2)]
        assert names(rankings.cadre_ranking(session, o["prov"], DAY, limit=2, offset=4)) == []
        assert rankings.cadre_count(session, o["prov"], DAY) == 4
        assert rankings.cadre_count(session, o["qd"], DAY) == 3
        assert rankings.cadre_count(session, o["qd"], DAY, "own") == 1
        assert [row.name for row in rankings.bottom_cadres(session, o["prov"], DAY, 2, "subtree")] == ["赵磊", "李娜"]


def record_five(session, org, held_on: str, cadre=None, kinds=CADRE_ACTIVITY_KINDS, count: int = 5):
    for kind in kinds[:count]:
        record_activity(session, organisation=org, kind=kind, held_on=held_on, place="团委", youth_count=5,
                        description="活动", now=NOW, cadre=cadre,
                        evidence=["photo.jpg"])


def test_organisations_ranked_among_siblings_by_score_and_by_each_figure(sessions, world):
    o, c = world.orgs, world.cadres
    with sessions() as session:
        record_five(session, o["qd-sn"], "2026-02-10", cadre=c["zhang"])            # Jan–Feb met
        record_five(session, o["jn-lx"], "2026-02-10", cadre=c["wang"], count=4)    # four only: not met
        record_five(session, o["qd-sn"], "2026-03-02", kinds=ORGAN_ACTIVITY_KINDS)  # the organ's Q1, met already
        session.get(Youth, world.youth["xiaoming"].id).bound_at = NOW - timedelta(days=3)
        campaigns = {o["prov"].id: (4, 8), o["qd"].id: (3, 4), o["qd-sn"].id: (3, 4), o["jn"].id: (1, 4),
                     o["jn-lx"].id: (1, 4)}
        rankings.compute_rankings(session, DAY, NOW, fixed(world.points, campaigns))
        session.commit()

        qd, jn = rankings.child_ranking(session, o["prov"], DAY)
        assert (qd.code, qd.rank, jn.code, jn.rank) == ("qd", 1, "jn", 2)
        # 青岛: points 30, 30, 10; periods: 张伟 1/1, 赵磊 0/1, 市南区团委's own quarter 1/1 (李娜: none due yet);
        # campaigns 3/4; binding 1 of 张伟's 2 contacts.
        assert (qd.cadres, qd.average_points) == (3, Decimal("23.33"))
        assert (qd.periods_met, qd.periods_due, qd.compliance_rate) == (2, 3, Decimal("0.6667"))
        assert (qd.campaign_done, qd.campaign_total, qd.campaign_rate) == (3, 4, Decimal("0.7500"))
        assert (qd.contacts, qd.bound, qd.binding_rate) == (2, 1, Decimal("0.5000"))
        # (40 × 23.33 + 20 × 66.67 + 20 × 75 + 20 × 50) / 100
        assert qd.score == Decimal("47.67")
        # 济南: 50.5 points, 0/1 periods, campaigns 1/4, no contacts (binding does not apply):
        # (40 × 50.5 + 20 × 0 + 20 × 25) / 80
        assert (jn.average_points, jn.compliance_rate, jn.binding_rate, jn.score) == (Decimal("50.50"), Decimal(0),
                                                                                       None, Decimal("31.50"))
        assert [row.code for row in rankings.child_ranking(session, o["prov"], DAY, sort="points")] == ["jn", "qd"]
        assert [(row.code, row.rank) for row in rankings.child_ranking(session, o["prov"], DAY, sort="binding")] \
            == [("qd", 1), ("jn", 2)]
        zhang = rankings.cadre_ranking(session, o["qd-sn"], DAY, scope="own")[0]
        assert (zhang.periods_met, zhang.periods_due, zhang.period_activities) == (1, 1, 0)
        assert (zhang.contacts, zhang.bound, zhang.binding_rate) == (2, 1, Decimal("0.5000"))
        province = rankings.organisation_standing(session, o["prov"], DAY)
        assert (province.cadres, province.rank_among_siblings, province.siblings) == (4, 1, 1)
        assert province.points_histogram == (0, 1, 0, 2, 0, 1, 0, 0, 0, 0)
        counties, total = rankings.depth_ranking(session, o["prov"], 2, DAY)
        assert total == 2 and [(row.code, row.rank) for row in counties] == [("qd-sn", 1), ("jn-lx", 2)]
        with pytest.raises(ValueError):
            rankings.child_ranking(session, o["prov"], DAY, sort="nonsense")


def test_a_revoked_activity_does_not_count_towards_the_quota(sessions, world):
    o, c = world.orgs, world.cadres
    with sessions() as session:
        record_five(session, o["qd-sn"], "2026-02-10", cadre=c["zhang"])
        first = session.scalars(select(Activity).order_by(Activity.id)).first()
        first.revoked_at = NOW
        rankings.compute_rankings(session, DAY, NOW, fixed(world.points))
        zhang = rankings.cadre_ranking(session, o["qd-sn"], DAY, scope="own")[0]
        assert (zhang.periods_met, zhang.periods_due) == (0, 1)  # Jan–Feb was due and missed


def test_recomputing_a_day_replaces_it_and_earlier_days_stay_for_the_charts(sessions, world):
    o, c = world.orgs, world.cadres
    with sessions() as session:
        rankings.compute_rankings(session, DAY, NOW, fixed(world.points))
        later = {**world.points, c["zhao"].id: Decimal("99")}
        rankings.compute_rankings(session, DAY + timedelta(days=1), NOW, fixed(later))
        rankings.compute_rankings(session, DAY + timedelta(days=1), NOW, fixed(later))  # again: replaced
        session.commit()
        assert session.scalar(select(func.count()).select_from(rankings.CadreRanking)) == 8
        assert rankings.latest_day(session) == DAY + timedelta(days=1)
        assert rankings.latest_day(session, on_or_before=DAY) == DAY
        assert rankings.computed_days(session) == [DAY + timedelta(days=1), DAY]
        history = rankings.cadre_history(session, c["zhao"], DAY, DAY + timedelta(days=5), level="root")
        assert [(h.day, h.rank, h.value) for h in history] == [(DAY, 4, Decimal("10.00")),
                                                               (DAY + timedelta(days=1), 1, Decimal("99.00"))]
        qd_history = rankings.organisation_history(session, o["qd"], DAY, DAY + timedelta(days=1))
        # 青岛 stays second to 济南 (its periods were due and missed), with a better score
        assert [(h.rank, h.value) for h in qd_history] == [(2, Decimal("11.67")), (2, Decimal("26.50"))]


def test_pruning_keeps_recent_days_month_ends_and_the_half_year_day(sessions, world):
    today = date(2026, 11, 20)
    days = [date(2026, 6, 14), date(2026, 6, 15), date(2026, 6, 30), date(2026, 7, 1), date(2026, 11, 1)]
    assert rankings.kept_days(days, today) == {date(2026, 6, 15), date(2026, 6, 30), date(2026, 11, 1)}
    with sessions() as session:
        for day in days:
            rankings.compute_rankings(session, day, NOW, fixed(world.points))
        assert rankings.prune_rankings(session, today) == 2
        session.commit()
        assert sorted(rankings.computed_days(session)) == [date(2026, 6, 15), date(2026, 6, 30), date(2026, 11, 1)]
        assert session.scalar(select(func.count()).select_from(rankings.OrganisationRanking)) == 3 * 7


def test_the_real_sources_read_the_points_ledger(sessions, world):
    c = world.cadres
    with sessions() as session:
        zhang, li = session.get(Cadre, c["zhang"].id), session.get(Cadre, c["li"].id)
        for number in range(3):
            award(session, zhang, "activities", f"a{number}", NOW, "activity", str(number))
        award(session, li, "activities", "b0", NOW, "activity", "10")
        rankings.compute_rankings(session, DAY, NOW)
        rows = rankings.cadre_ranking(session, world.orgs["prov"], DAY)
        assert [(row.name, row.points, row.rank) for row in rows] == [
            ("张伟", Decimal("3.00"), 1), ("李娜", Decimal("1.50"), 2), ("王芳", Decimal("0.00"), 3),
            ("赵磊", Decimal("0.00"), 3)]


def test_composite_score_shares_the_weight_of_figures_that_do_not_apply():
    # (40 × 80 + 20 × 50 + 20 × 100 + 20 × 25) / 100
    assert rankings.composite_score(Decimal("80"), Decimal("0.5"), Decimal("1"), Decimal("0.25")) == Decimal("67.00")
    assert rankings.composite_score(Decimal("80"), None, None, None) == Decimal("80.00")
    assert rankings.composite_score(None, None, None, None) == Decimal("0.00")


def test_month_bounds_and_quota_periods():
    assert rankings.month_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    with pytest.raises(ValueError):
        rankings.month_bounds("2026-13")
    assert rankings.quota_periods(date(2026, 3, 10)) == (1, 0)
    assert rankings.quota_periods(date(2026, 12, 31)) == (5, 3)
    assert rankings.local_today(datetime(2026, 3, 10, 17, 0, tzinfo=timezone.utc)) == date(2026, 3, 11)


# ------------------------------------------------------------------------------------------ jobs

def test_the_daily_job_ranks_yesterday_once_and_the_issue_job_announces_each_bulletin_once(sessions, world):
    from engine import ManualClock
    from engine.jobs import JobContext
    from workflows import ranking_jobs
    from workflows.jobs import league_jobs
    from workflows.league_engine import build_league_engine
    from workflows.models import Notification

    assert {"rankings.daily", "bulletins.issue"} <= set(league_jobs.names())
    assert league_jobs.get("rankings.daily").every_seconds == 3600
    clock = ManualClock(datetime(2026, 6, 1, 1, 30, tzinfo=timezone.utc))  # 09:30 on 1 June in Beijing
    ctx = JobContext(session_factory=sessions, engine=build_league_engine(clock=clock))
    with sessions() as session:  # by hand, during the day: the job redoes it once the day is over
        rankings.compute_rankings(session, date(2026, 5, 31), datetime(2026, 5, 31, 4, 0, tzinfo=timezone.utc))
        session.commit()
    ranking_jobs.daily_ranking(ctx, {})
    with sessions() as session:
        first = session.get(rankings.RankingRun, date(2026, 5, 31))
        assert first is not None and first.cadres == 4 and first.computed_at == clock.now()
    ranking_jobs.daily_ranking(ctx, {})  # nothing to do
    with sessions() as session:
        assert rankings.computed_days(session) == [date(2026, 5, 31)]
    ranking_jobs.issue_bulletins(ctx, {})
    ranking_jobs.issue_bulletins(ctx, {})
    with sessions() as session:
        issued = session.scalars(select(rankings.RankingRun)).all()
        assert len(issued) == 1
        from workflows.bulletins import BulletinIssue
        kinds = sorted((i.kind, i.period) for i in session.scalars(select(BulletinIssue)))
        assert kinds == [("monthly", "2026-05")] * 5  # the five leading organs; no year-end for 2025
        notes = session.scalars(select(Notification).where(Notification.subject.like("%月度通报已发布"))).all()
        assert sorted(n.recipient for n in notes) == ["J_org", "P_org", "Q_org", "S_org"]
        assert session.scalar(select(func.count()).select_from(Notification)) == 4

    clock.set(datetime(2027, 1, 1, 2, 0, tzinfo=timezone.utc))  # New Year's Day: the year-end evaluation of 2026
    ranking_jobs.daily_ranking(ctx, {})
    ranking_jobs.issue_bulletins(ctx, {})
    ranking_jobs.issue_bulletins(ctx, {})
    with sessions() as session:
        from workflows.eligibility import AssessmentResult
        assert rankings.computed_days(session) == [date(2026, 12, 31), date(2026, 5, 31)]
        results = session.scalars(select(AssessmentResult)).all()
        assert len(results) == 4 and not any(r.passed for r in results)  # nobody has 60 points
        subjects = [n.subject for n in session.scalars(select(Notification).where(Notification.recipient == "P_org"))]
        assert "2026年“1+100”工作年终考核结果已生成" in subjects


def test_compliance_follows_a_quota_lowered_below_the_notice(sessions, world):
    from workflows.quotas import set_quota
    o, c = world.orgs, world.cadres
    with sessions() as session:
        set_quota(session, session.get(type(o["qd-sn"]), o["qd-sn"].id), {"cadre_activities": 3}, NOW)
        record_five(session, o["qd-sn"], "2026-02-10", cadre=c["zhang"], count=3)  # 3 of 3 kinds: met at 市南区
        record_five(session, o["qd"], "2026-02-10", cadre=c["zhao"], count=3)      # but not at 青岛 (5 still)
        rankings.compute_rankings(session, DAY, NOW, fixed(world.points))
        rows = {row.name: (row.periods_met, row.periods_due) for row in rankings.cadre_ranking(session, o["qd"], DAY)}
        assert rows == {"张伟": (1, 1), "李娜": (0, 0), "赵磊": (0, 1)}
