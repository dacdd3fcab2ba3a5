"""The bulletins for a small generated month match a hand-computed expectation; the workbooks carry the numbers.

The month (May 2026) is built by :func:`build_month` (the web tests use it too):

    青岛团市委 qd:  赵磊 zhao (full-time) — 2 activities on 6 May, the lecture found false on 25 May
                    孙悦 sun (part-time)  — 3 activities on 20 April (1.5 points each)
      市南区团委 qd-sn: 张伟 zhang (full-time) — 5 activities of the 5 kinds on 5 May; 2 contacts, 1 bound;
                        guides 八大关 and did 2 items of the education practice (1.5 points each)
        八大关街道团工委 qd-sn-gw: 李娜 li (part-time) — nothing
    济南团市委 jn / 历下区团委 jn-lx: 王芳 wang (seconded) — 1 activity on 7 May

A congress-study campaign launched by 青岛 on 1 May reaches its four cadres; three have finished.
Two of the month's records were spot-checked (one true, one false); two youth ratings (5 and 4 stars).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from engine.models import ProcessInstance
from tests.league import build_league
from tests.workflows.campaign_support import RecordingQueue, deploy, launch, new_campaign
from workflows import bulletins, rankings
from workflows.activities import record_activity
from workflows.bulletin_workbooks import annex4_workbook, bulletin_workbook, half_year_workbook, year_end_workbook
from workflows.campaign_launch import run_launch_chunk
from workflows.campaigns import CampaignTarget
from workflows.education_practice import choose_guidance, record_item
from workflows.eligibility import AssessmentResult, nomination_refusal
from workflows.league_engine import build_league_engine
from workflows.models import Activity, Cadre, Contact, User, Youth
from workflows.satisfaction import record_rating
from workflows.spot_checks import SpotCheck, SpotCheckRound, record_verdict

MAY_1 = datetime(2026, 5, 1, 0, 0, tzinfo=timezone.utc)
MONTH_END = date(2026, 5, 31)
EVIDENCE = ["photo-1.jpg"]


@dataclass
class Month:
    """Handles to what :func:`build_month` made."""

    league: object
    revoked_activity_id: int
    campaign_id: int


def _cadre(session, league, username, name, kind, org_code):
    org = league.orgs[org_code]
    user = User(username=username, display_name=name, organisation_id=org.id, password_hash=None, active=True,
                session_version=1, created_at=MAY_1)
    session.add(user)
    session.flush()
    cadre = Cadre(user_id=user.id, code=f"c-{username}", name=name, kind=kind, organisation_id=org.id)
    session.add(cadre)
    session.flush()
    league.cadres[username] = cadre
    return cadre


def _activities(session, org, cadre, held_on, kinds, now):
    return [record_activity(session, organisation=org, kind=kind, held_on=held_on, place="青年之家", youth_count=8,
                            description="与青年一起开展活动", now=now, cadre=cadre, evidence=EVIDENCE)
            for kind in kinds]


def build_month(sessions, clock, league=None) -> Month:
    """Build May 2026 as the module docstring says, and compute the ranking of 31 May."""
    engine = build_league_engine(clock=clock)
    with sessions() as session:
        if league is None:
            league = build_league(session, MAY_1 - timedelta(days=30))
        o = league.orgs
        zhang, li, wang = (session.get(Cadre, league.cadres[name].id) for name in ("zhang", "li", "wang"))
        zhao = _cadre(session, league, "zhao", "赵磊", "full_time", "qd")
        sun = _cadre(session, league, "sun", "孙悦", "part_time", "qd")
        session.get(Youth, league.youth["xiaoming"].id).bound_at = datetime(2026, 5, 10, tzinfo=timezone.utc)
        late = Youth(name="小刚", phone="13800000003", occupation="工人", industry="制造业",
                     bound_at=datetime(2026, 6, 2, tzinfo=timezone.utc))  # after the month: not counted
        session.add(late)
        session.flush()
        session.add(Contact(cadre_id=zhao.id, youth_id=late.id, since=MAY_1))
        recorded = datetime(2026, 5, 8, tzinfo=timezone.utc)
        zhang_records = _activities(session, o["qd-sn"], zhang, "2026-05-05",
                                    ["practical_thing", "league_lecture", "heart_to_heart", "volunteer_service",
                                     "culture_sports"], recorded)
        zhao_records = _activities(session, o["qd"], zhao, "2026-05-06", ["practical_thing", "league_lecture"],
                                   recorded)
        _activities(session, o["qd"], sun, "2026-04-20", ["practical_thing", "league_lecture", "heart_to_heart"],
                    recorded)
        _activities(session, o["jn-lx"], wang, "2026-05-07", ["practical_thing"], recorded)
        round_row = SpotCheckRound(month="2026-05", organisation_id=o["qd"].id, population=7, sample_size=2,
                                   drawn_at=datetime(2026, 5, 20, tzinfo=timezone.utc))
        session.add(round_row)
        session.flush()
        for activity in (zhang_records[0], zhao_records[1]):
            session.add(SpotCheck(activity_id=activity.id, round_id=round_row.id, month="2026-05",
                                  organisation_id=activity.organisation_id, cadre_id=activity.cadre_id,
                                  inspector="S_insp", created_at=round_row.drawn_at))
        session.flush()
        checked = datetime(2026, 5, 25, 3, 0, tzinfo=timezone.utc)
        record_verdict(session, zhang_records[0].id, "phone", "true", None, "S_insp", checked)
        record_verdict(session, zhao_records[1].id, "phone", "false", "青年表示未参加", "S_insp", checked)
        rated = datetime(2026, 5, 20, tzinfo=timezone.utc)
        record_rating(session, source="youth_voice", source_id="901", youth_username=None, rated_username="zhang",
                      stars=5, comment=None, organisation_code=None, now=rated)
        record_rating(session, source="micro_wish", source_id="902", youth_username=None, rated_username="zhao",
                      stars=4, comment=None, organisation_code=None, now=rated)
        choose_guidance(session, zhang, "qd-sn-gw", "qd-sn-gw-1")
        for item in ("study_speeches", "themed_lecture"):
            record_item(session, cadre=zhang, item=item, held_on="2026-05-12", place="八大关社区", participants=12,
                        description="与团员一起", evidence=EVIDENCE, now=recorded)
        session.commit()
        revoked_id = zhao_records[1].id
        assert li.id and sun.id
    deploy(sessions, engine, "congress_study")
    campaign_id = new_campaign(sessions, clock, by="Q_org", org="qd")
    for number in launch(sessions, RecordingQueue(), campaign_id, clock.now()):
        with sessions() as session:
            run_launch_chunk(session, engine, campaign_id, number)
    with sessions() as session:
        finished = [league.cadres[name].id for name in ("zhang", "zhao", "sun")]
        instances = session.scalars(select(CampaignTarget.instance_id).where(CampaignTarget.campaign_id == campaign_id,
                                                                             CampaignTarget.cadre_id.in_(finished)))
        session.execute(update(ProcessInstance).where(ProcessInstance.id.in_(list(instances)))
                        .values(status="completed"))
        rankings.compute_rankings(session, MONTH_END, datetime(2026, 6, 1, 1, 0, tzinfo=timezone.utc))
        session.commit()
    return Month(league, revoked_id, campaign_id)


@pytest.fixture
def month(sessions, clock):
    return build_month(sessions, clock)


def org(session, code):
    from workflows.organisations import by_code
    return by_code(session, code)


def test_the_monthly_bulletin_of_qingdao_matches_the_hand_computed_month(sessions, month):
    with sessions() as session:
        b = bulletins.monthly_bulletin(session, org(session, "qd"), "2026-05")
    assert b.title == "青岛团市委 2026年5月“1+100”工作月度通报"
    assert (b.first, b.last, b.snapshot_day) == (date(2026, 5, 1), MONTH_END, MONTH_END)
    s = b.standing
    # points: 张伟 5 + 2 × 1.5 + 孙悦 3 × 1.5 + 赵磊 1 (2 − the revoked one) + 李娜 0 = 13.5 over 4 cadres
    assert (s.cadres, s.average_points) == (4, Decimal("3.38"))
    # periods due by 31 May: 张伟 Jan–Feb, Mar–Apr, and May–Jun met already (1 of 3); 赵磊 0 of 2;
    # 孙悦 and 李娜 Q1 (0 of 1 each); the organs 青岛 and 市南区 Q1 (0 of 1 each): 1 of 9
    assert (s.periods_met, s.periods_due, s.compliance_rate) == (1, 9, Decimal("0.1111"))
    assert (s.campaign_done, s.campaign_total, s.campaign_rate) == (3, 4, Decimal("0.7500"))
    # contacts: 张伟's two (小明 bound on 10 May), 赵磊's 小刚 (bound on 2 June, after the month)
    assert (s.contacts, s.bound, s.binding_rate) == (3, 1, Decimal("0.3333"))
    # (40 × 3.38 + 20 × 11.11 + 20 × 75 + 20 × 33.33) / 100
    assert s.score == Decimal("25.24")
    assert (s.rank_among_siblings, s.siblings) == (1, 2)
    # the month: 张伟's 5 and 赵磊's 1 valid record held in May (孙悦's were held in April), 1 revoked
    assert b.facts == bulletins.MonthFacts(activities=6, revoked=1, campaign_done=3, campaign_total=4)
    assert [(c.code, c.rank) for c in b.children] == [("qd-sn", 1)]
    assert b.child_facts[b.children[0].organisation_id] == bulletins.MonthFacts(5, 0, 1, 2)
    assert [(c.name, c.rank, c.points) for c in b.cadres] == [("孙悦", 1, Decimal("4.50")), ("赵磊", 2, Decimal("1.00"))]
    assert b.cadre_total == 2
    assert [c.name for c in b.named_cadres] == ["赵磊"] and b.named_children == []
    [revoked] = b.revoked
    assert (revoked.activity_id, revoked.held_on, revoked.kind, revoked.cadre_name, revoked.organisation_name,
            revoked.revoked_on) == (month.revoked_activity_id, "2026-05-06", "讲一次团课", "赵磊", "青岛团市委",
                                    date(2026, 5, 25))
    assert revoked.reason.startswith("抽查不属实（电话抽查）")
    assert (b.spot_checks.sampled, b.spot_checks.checked, b.spot_checks.confirmed, b.spot_checks.false) == (2, 2, 1, 1)
    assert (b.satisfaction.count, b.satisfaction.average) == (2, Decimal("4.50"))


def test_the_province_bulletin_ranks_its_cities_and_names_the_last(sessions, month):
    with sessions() as session:
        b = bulletins.monthly_bulletin(session, org(session, "prov"), "2026-05")
    assert [(c.code, c.rank, c.score) for c in b.children] == [("qd", 1, Decimal("25.24")), ("jn", 2, Decimal("0.67"))]
    # 济南: 王芳 1 point, periods 0 of 4 (王芳 two, 济南 and 历下区 one each), no campaign, no contacts:
    # (40 × 1 + 20 × 0) / 60
    assert [c.code for c in b.named_children] == ["jn"]
    assert b.facts.activities == 7 and b.facts.revoked == 1
    assert b.standing.cadres == 5 and b.standing.average_points == Decimal("2.90")


def test_a_month_without_a_ranking_is_refused(sessions, month):
    from engine.errors import NotFound
    with sessions() as session, pytest.raises(NotFound):
        bulletins.monthly_bulletin(session, org(session, "qd"), "2026-03")


def read(data: bytes):
    return load_workbook(io.BytesIO(data))


def test_the_bulletin_workbook_carries_the_numbers(sessions, month):
    with sessions() as session:
        b = bulletins.monthly_bulletin(session, org(session, "qd"), "2026-05", all_cadres=True)
    book = read(bulletin_workbook(b))
    assert book.sheetnames == ["概况", "下级组织排名", "团干部排名", "通报名单", "撤销记录"]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2"
    overview = {row[0]: row[1] for row in book["概况"].iter_rows(min_row=3, values_only=True)}
    assert overview["平均积分（年度累计）"] == 3.38 and overview["“五个一”达标率"] == pytest.approx(0.1111)
    assert overview["本月开展活动数"] == 6 and overview["核查不属实"] == 1 and overview["青年满意度平均星级"] == 4.5
    assert book["概况"]["B5"].number_format == "0.00" and book["概况"]["B5"].value == 25.24
    children = list(book["下级组织排名"].iter_rows(values_only=True))
    assert children[0][:4] == ("名次", "组织", "类型", "综合得分")
    # 市南区团委: points 8 and 0, periods 1 of 5, campaigns 1 of 2, binding 1 of 2: (40 × 4 + 20 × 20 + 20 × 50
    # + 20 × 50) / 100
    assert children[1][:6] == (1, "市南区团委", "县级团委", 25.6, 2, 4)
    cadres = list(book["团干部排名"].iter_rows(values_only=True))
    assert [row[:2] + (row[5],) for row in cadres[1:]] == [(1, "孙悦", 4.5), (2, "赵磊", 1)]
    assert book["团干部排名"].column_dimensions["E"].width == 28
    assert list(book["通报名单"].iter_rows(min_row=2, values_only=True)) == [("团干部", 2, "赵磊", 1)]
    revoked = list(book["撤销记录"].iter_rows(min_row=2, values_only=True))
    assert revoked[0][:5] == ("2026-05-06", "讲一次团课", "赵磊", "青岛团市委", "2026-05-25")


def test_half_year_review_reads_the_snapshot_before_mid_june(sessions, month):
    with sessions() as session:
        review = bulletins.half_year_review(session, org(session, "qd"), 2026)
    assert review.snapshot_day == MONTH_END and review.standing.binding_rate == Decimal("0.3333")
    book = read(half_year_workbook(review))
    overview = {row[0]: row[1] for row in book["概况"].iter_rows(min_row=3, values_only=True)}
    assert overview["手机端绑定率"] == pytest.approx(0.3333) and overview["绑定手机端人数"] == 1
    assert [row[1] for row in book["团干部"].iter_rows(min_row=2, values_only=True)] == ["孙悦", "赵磊"]


def test_year_end_evaluation_applies_the_pass_rule_and_writes_the_results(sessions, month):
    c = month.league.cadres
    with sessions() as session:
        # a year-end snapshot in which 张伟 has 60 points and 赵磊 70 (but a record of his was found false)
        points = {c["zhang"].id: Decimal("60"), c["zhao"].id: Decimal("70"), c["sun"].id: Decimal("59.99"),
                  c["li"].id: Decimal("0"), c["wang"].id: Decimal("80")}
        rankings.compute_rankings(session, date(2026, 12, 31), datetime(2027, 1, 1, tzinfo=timezone.utc),
                                  rankings.RankingSources(points_by_cadre=lambda _s, _y: points))
        evaluation = bulletins.year_end_evaluation(session, org(session, "qd"), 2026)
        verdicts = {v.standing.name: (v.passed, v.revoked) for v in evaluation.verdicts}
        assert verdicts == {"张伟": (True, 0), "赵磊": (False, 1), "孙悦": (False, 0), "李娜": (False, 0)}
        assert evaluation.passed == 1 and "60" in evaluation.rule
        assert bulletins.record_year_end(session, evaluation, "Q_org", datetime(2027, 1, 2, tzinfo=timezone.utc)) == 4
        session.commit()
        results = {row.cadre_id: row.passed for row in session.scalars(select(AssessmentResult))}
        assert results == {c["zhang"].id: True, c["zhao"].id: False, c["sun"].id: False, c["li"].id: False}
        assert nomination_refusal(session, session.get(Cadre, c["sun"].id), 2026).startswith("孙悦（c-sun）2026年度考核不合格")
    book = read(year_end_workbook(evaluation))
    rows = {row[1]: row for row in book["团干部考核结果"].iter_rows(min_row=2, values_only=True)}
    assert rows["张伟"][5:8] == (60, 0, "合格") and rows["赵磊"][6:8] == (1, "不合格")


def test_verdict_rule():
    assert bulletins.verdict(Decimal("60"), 0) == (True, "合格 / passed")
    passed, reason = bulletins.verdict(Decimal("59.5"), 2)
    assert not passed and "低于60分" in reason and "2条记录" in reason


def test_the_annex4_ledger_lists_every_cadre_with_the_committee_branch_and_items(sessions, month):
    with sessions() as session:
        lines = bulletins.annex4_ledger(session, org(session, "qd"), 2026)
    assert [(line.number, line.cadre_name) for line in lines] == [(1, "孙悦"), (2, "赵磊"), (3, "张伟"), (4, "李娜")]
    zhang = lines[2]
    assert (zhang.unit, zhang.kind, zhang.committee, zhang.branch) == ("市南区团委", "专职", "八大关街道团工委",
                                                                        "八大关社区团支部")
    assert zhang.items_done == ("学习总书记讲话", "讲一次主题团课") and zhang.lecture_given
    assert zhang.remark == "尚有6项未完成" and lines[0].remark == "未确定联系的基层团委（团总支）"
    book = read(annex4_workbook(lines, "青岛团市委", 2026))
    sheet = book["附件4汇总表"]
    assert sheet.freeze_panes == "A2" and sheet["E1"].value == "联系指导的基层团委（团总支）"
    row = [cell.value for cell in sheet[4]]
    assert row[:10] == [3, "市南区团委", "张伟", "专职", "八大关街道团工委", "八大关社区团支部", 2, 8, "是",
                        "学习总书记讲话、讲一次主题团课"]
    summary = {r[0]: r[1] for r in book["说明"].iter_rows(min_row=3, values_only=True)}
    assert summary["已讲主题团课"] == 1 and summary["团干部数"] == 4


def test_issuing_a_bulletin_happens_once(sessions, month):
    with sessions() as session:
        qd = org(session, "qd")
        now = datetime(2026, 6, 1, tzinfo=timezone.utc)
        assert bulletins.issue_bulletin(session, qd, "monthly", "2026-05", MONTH_END, 2, now) is not None
        assert bulletins.issue_bulletin(session, qd, "monthly", "2026-05", MONTH_END, 2, now) is None
        assert [(i.kind, i.period) for i in bulletins.issued(session, qd)] == [("monthly", "2026-05")]
        assert session.scalar(select(Activity.revoked_at).where(Activity.id == month.revoked_activity_id))
