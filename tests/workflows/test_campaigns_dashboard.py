"""A campaign's dashboard: completion per organisation down the tree, overdue tasks, the people, the exports."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine.models import HumanTask
from workflows.campaign_dashboard import (all_people, campaign_xlsx, organisation_breakdown, organisations_csv,
                                          parse_position, people, people_csv)
from workflows.campaign_launch import cancel_campaign, run_launch_chunk
from workflows.campaigns import campaign_by_id, completion_by_organisation
from workflows.organisations import by_code
from workflows.roles import load_actor

from .campaign_support import REPORT, RecordingQueue, add_cadres, deploy, launch, new_campaign

AFTER_DUE = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.fixture
def campaign_id(sessions, clock, league, league_engine):
    """The province's Congress study to 9 cadres; 张伟, gw000 and lx000 have reported."""
    deploy(sessions, league_engine, "congress_study")
    add_cadres(sessions, "qd-sn", 2, "sn", clock.now())
    add_cadres(sessions, "qd-sn-gw", 3, "gw", clock.now())
    add_cadres(sessions, "jn-lx", 1, "lx", clock.now())
    campaign_id = new_campaign(sessions, clock)
    for number in launch(sessions, RecordingQueue(), campaign_id, clock.now()):
        with sessions() as session:
            run_launch_chunk(session, league_engine, campaign_id, number)
    with sessions() as session:
        for who in ("zhang", "gw000", "lx000"):
            task = session.scalar(select(HumanTask).where(HumanTask.assignee == who))
            league_engine.complete_task(session, task.id, REPORT, who)
        session.commit()
    return campaign_id


def numbers(breakdown):
    return [(row.code, row.own_only, row.total, row.launched, row.done, row.running, row.overdue_tasks)
            for row in [breakdown.totals, *breakdown.rows]]


def view(sessions, campaign_id, code, now):
    with sessions() as session:
        return organisation_breakdown(session, campaign_by_id(session, campaign_id), by_code(session, code), now)


def test_completion_per_organisation_one_level_down(sessions, clock, campaign_id):
    assert numbers(view(sessions, campaign_id, "prov", clock.now())) == [
        ("prov", False, 9, 9, 3, 6, 0), ("qd", False, 7, 7, 2, 5, 0), ("jn", False, 2, 2, 1, 1, 0)]
    assert numbers(view(sessions, campaign_id, "qd", clock.now())) == [
        ("qd", False, 7, 7, 2, 5, 0), ("qd-sn", False, 7, 7, 2, 5, 0)]
    # 市南区团委's own cadres (本级), then its street committee with everything below it
    breakdown = view(sessions, campaign_id, "qd-sn", AFTER_DUE)
    assert numbers(breakdown) == [("qd-sn", False, 7, 7, 2, 5, 5), ("qd-sn", True, 3, 3, 1, 2, 2),
                                  ("qd-sn-gw", False, 4, 4, 1, 3, 3)]
    assert [row.percent for row in breakdown.rows] == [33, 25]
    assert numbers(view(sessions, campaign_id, "qd-sn-gw-1", clock.now())) == [("qd-sn-gw-1", False, 0, 0, 0, 0, 0)]


def test_drill_down_to_the_people_behind_the_numbers(sessions, clock, campaign_id):
    with sessions() as session:
        campaign, street = campaign_by_id(session, campaign_id), by_code(session, "qd-sn-gw")
        everyone = people(session, campaign, street, clock.now())
        assert [p.cadre_name for p in everyone] == ["李娜", "干部gw0", "干部gw1", "干部gw2"]
        done = people(session, campaign, street, clock.now(), "done")
        assert [(p.cadre_name, p.status_name, p.open_task, p.open_tasks) for p in done] == \
            [("干部gw0", "已完成", None, 0)]
        li = everyone[0]
        assert (li.organisation_code, li.instance_status, li.open_task, li.overdue) == \
            ("qd-sn-gw", "running", "开展并记录十九大精神宣讲", False)
        assert li.open_task_due == datetime(2026, 11, 29, 16, tzinfo=timezone.utc)
        assert [p.cadre_name for p in people(session, campaign, street, clock.now(), "overdue")] == []
        overdue = people(session, campaign, street, AFTER_DUE, "overdue")
        assert [p.cadre_name for p in overdue] == ["李娜", "干部gw1", "干部gw2"] and all(p.overdue for p in overdue)
        first = people(session, campaign, by_code(session, "prov"), clock.now(), "open", limit=4)
        rest = people(session, campaign, by_code(session, "prov"), clock.now(), "open",
                      after=parse_position(first[-1].position))
        assert len(first) == 4 and len(rest) == 2
        assert {p.target_id for p in first} | {p.target_id for p in rest} == \
            {p.target_id for p in all_people(session, campaign, by_code(session, "prov"), clock.now(), "open")}
        assert people(session, campaign, street, clock.now(), "not_launched") == []
        with pytest.raises(ValueError):
            people(session, campaign, street, clock.now(), "nonsense")


def test_exports_carry_the_numbers(sessions, clock, campaign_id):
    with sessions() as session:
        campaign, root = campaign_by_id(session, campaign_id), by_code(session, "qd-sn")
        breakdown = organisation_breakdown(session, campaign, root, AFTER_DUE)
        text = organisations_csv(breakdown)
        people_text = "".join(people_csv(all_people(session, campaign, root, AFTER_DUE)))
        workbook = campaign_xlsx(campaign, breakdown, all_people(session, campaign, root, AFTER_DUE))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows == [["组织编码", "组织名称", "范围", "对象数", "已发起", "已完成", "进行中", "逾期任务", "完成率"],
                    ["qd-sn", "市南区团委", "合计", "7", "7", "2", "5", "5", "0.2857"],
                    ["qd-sn", "市南区团委", "本级", "3", "3", "1", "2", "2", "0.3333"],
                    ["qd-sn-gw", "八大关街道团工委", "含下级", "4", "4", "1", "3", "3", "0.25"]]
    person_rows = list(csv.reader(io.StringIO(people_text.lstrip("\ufeff"))))
    assert len(person_rows) == 8 and person_rows[0][1] == "团干部"
    assert sorted(r[5] for r in person_rows[1:]) == ["已完成"] * 2 + ["进行中"] * 5
    assert sum(r[9] == "是" for r in person_rows[1:]) == 5
    book = load_workbook(io.BytesIO(workbook), read_only=True)
    by_org = [list(r) for r in book["按组织"].iter_rows(values_only=True)]
    assert by_org[1][3] == "对象数"
    assert [r[:8] for r in by_org[2:]] == [["qd-sn", "市南区团委", "合计", 7, 7, 2, 5, 5],
                                           ["qd-sn", "市南区团委", "本级", 3, 3, 1, 2, 2],
                                           ["qd-sn-gw", "八大关街道团工委", "含下级", 4, 4, 1, 3, 3]]
    details = [list(r) for r in book["明细"].iter_rows(values_only=True)]
    assert len(details) == 8 and sorted(r[5] for r in details[1:]) == ["已完成"] * 2 + ["进行中"] * 5


def test_completion_by_organisation_for_the_rankings(sessions, clock, campaign_id, league_engine):
    since, until = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    other = new_campaign(sessions, clock, by="Q_org", org="qd", title="被撤销的活动")  # does not count
    for number in launch(sessions, RecordingQueue(), other, clock.now()):
        with sessions() as session:
            run_launch_chunk(session, league_engine, other, number)
    with sessions() as session:
        cancel_campaign(session, None, load_actor(session, "Q_org"), campaign_by_id(session, other), "重复发起",
                        clock.now())
    with sessions() as session:
        ids = {code: by_code(session, code).id for code in ("prov", "qd", "qd-sn", "qd-sn-gw", "qd-sn-gw-1", "jn",
                                                            "jn-lx")}
        counts = completion_by_organisation(session, by_code(session, "prov"), since, until)
        assert {code: counts[i] for code, i in ids.items()} == {
            "prov": (3, 9), "qd": (2, 7), "qd-sn": (2, 7), "qd-sn-gw": (1, 4), "qd-sn-gw-1": (0, 0),
            "jn": (1, 2), "jn-lx": (1, 2)}
        assert completion_by_organisation(session, by_code(session, "qd-sn"), since, until) == {
            ids["qd-sn"]: (2, 7), ids["qd-sn-gw"]: (1, 4), ids["qd-sn-gw-1"]: (0, 0)}
        assert set(completion_by_organisation(session, by_code(session, "prov"), until,
                                              datetime(2028, 1, 1, tzinfo=timezone.utc)).values()) == {(0, 0)}
