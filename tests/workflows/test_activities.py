"""Recording activities and the five-ones quota, directly and through the service operators."""
from __future__ import annotations

import pytest

from engine.services import ServiceCall
from workflows.activities import check_quota, record_activity
from workflows.models import CADRE_ACTIVITY_KINDS, ORGAN_ACTIVITY_KINDS
from workflows.services import registry


def call(session, clock, org="qd-sn"):
    return ServiceCall(session=session, instance_id=None, organisation_id=org, now=clock.now(), task_data={})


def record(session, clock, kind, day, cadre=None, org="qd-sn"):
    return registry.call("record_activity", call(session, clock, org),
                         {"kind": kind, "date": day, "place": "团委", "youth_count": 10,
                          "description": "一次直接联系青年的活动", "cadre": cadre, "evidence": ["签到表.jpg"]})


def test_a_cadre_meets_the_quota_with_five_kinds(sessions, clock, league):
    with sessions() as session:
        for i, kind in enumerate(CADRE_ACTIVITY_KINDS[:4]):
            record(session, clock, kind, f"2026-05-0{i + 1}", cadre="zhang")
        record(session, clock, "league_lecture", "2026-05-09", cadre="zhang")
        half = registry.call("check_five_ones", call(session, clock),
                             {"period_start": "2026-05-01", "period_end": "2026-06-30", "cadre": "zhang"})
        assert half == {"count": 5, "kinds_done": list(CADRE_ACTIVITY_KINDS[:4]),
                        "kinds_missing": ["culture_sports"], "met": False}
        record(session, clock, "culture_sports", "2026-06-30", cadre="zhang")
        record(session, clock, "culture_sports", "2026-07-01", cadre="zhang")  # outside the period
        full = registry.call("check_five_ones", call(session, clock),
                             {"period_start": "2026-05-01", "period_end": "2026-06-30", "cadre": "zhang"})
        assert full["met"] is True and full["count"] == 6


def test_an_organ_counts_only_its_own_collective_activities(sessions, clock, league):
    with sessions() as session:
        for kind in ORGAN_ACTIVITY_KINDS:
            record(session, clock, kind, "2026-05-10", org="qd")
        record(session, clock, "league_lecture", "2026-05-10", cadre="zhang", org="qd")
        check = check_quota(session, "2026-04-01", "2026-06-30", organisation=league.orgs["qd"])
        assert check.met and check.count == 5


def test_revoked_activities_do_not_count(sessions, clock, league):
    with sessions() as session:
        ids = [record(session, clock, kind, "2026-05-10", cadre="zhang")["activity_id"]
               for kind in CADRE_ACTIVITY_KINDS]
        from workflows.models import Activity
        session.get(Activity, ids[0]).revoked_at = clock.now()
        assert not check_quota(session, "2026-05-01", "2026-06-30", cadre=league.cadres["zhang"]).met


@pytest.mark.parametrize("kind,day", [("party", "2026-05-01"), ("league_lecture", "2026-13-01")])
def test_bad_activities_are_refused(sessions, clock, league, kind, day):
    with sessions() as session, pytest.raises(ValueError):
        record_activity(session, organisation=league.orgs["qd-sn"], kind=kind, held_on=day, place="x",
                        youth_count=1, description="x", now=clock.now(), cadre=league.cadres["zhang"])


def test_tree_operators(sessions, clock, league):
    with sessions() as session:
        c = call(session, clock, org="qd-sn-gw-1")
        assert registry.call("parent_organisation", c, {})["code"] == "qd-sn-gw"
        assert registry.call("organisation_at_level", c, {"kind": "county"})["code"] == "qd-sn"
        assert registry.call("organisation_at_level", c, {"kind": "city"})["code"] == "qd"
        assert registry.call("organisation_at_level", c, {"kind": "province"})["code"] == "prov"
        assert registry.call("parent_organisation", call(session, clock, org="prov"), {})["code"] is None
