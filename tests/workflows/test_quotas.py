"""Five-ones quotas: settings per organisation that never rise level by level (不能层层加码), periods, compliance."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from engine.services import ServiceCall
from workflows.activities import record_activity, revoke_activity
from workflows.models import CADRE_ACTIVITY_KINDS, ORGAN_ACTIVITY_KINDS, Contact, Youth
from workflows.quotas import (NOTICE_QUOTA, Period, QuotaRaised, QuotaSetting, cadre_compliance, cadre_compliance_in,
                              cadre_period, contact_progress, effective_quota, effective_quotas, organ_compliance,
                              organ_compliance_in, periods_of_year, quarter, set_quota, two_month_period)
from workflows.services import registry


def record(session, clock, league, kind, day, cadre=None, org=None):
    cadre_row = league.cadres[cadre] if cadre else None
    organisation = league.orgs[org] if org else session.get(type(league.orgs["qd"]), cadre_row.organisation_id)
    return record_activity(session, organisation=organisation, kind=kind, held_on=day, place="团委", youth_count=8,
                           description="一次直接联系青年的活动", now=clock.now(), cadre=cadre_row,
                           evidence=["照片.jpg"])


# ------------------------------------------------------------------------------------- settings

def test_the_notice_sets_the_defaults(sessions, league):
    with sessions() as session:
        quota = effective_quota(session, league.orgs["qd-sn-gw-1"])
        assert quota == NOTICE_QUOTA
        assert (quota.activities_for("full_time"), quota.activities_for("seconded"), quota.activities_for("part_time"),
                quota.organ_activities, quota.contacts_for("full_time"), quota.contacts_for("part_time")) == \
            (5, 5, 5, 5, 100, 100)
        assert set(quota.set_by.values()) == {None}


def test_a_lower_level_may_not_raise_a_quota(sessions, clock, league):
    with sessions() as session:
        set_quota(session, league.orgs["qd"], {"part_time_contact_target": 10, "cadre_activities": 4}, clock.now(),
                  actor="Q_org")
        with pytest.raises(QuotaRaised) as raised:
            set_quota(session, league.orgs["qd-sn"], {"part_time_contact_target": 20}, clock.now())
        message = raised.value.message
        assert "不能层层加码" in message and "青岛团市委" in message and "10" in message and "20" in message
        assert " / " in message and "may not" in message and raised.value.http_status == 422
        with pytest.raises(QuotaRaised, match="青岛团市委.*为4"):  # inherited further down, named where it was set
            set_quota(session, league.orgs["qd-sn-gw"], {"cadre_activities": 5}, clock.now())
        with pytest.raises(QuotaRaised, match="《通知》"):  # the top answers to the notice
            set_quota(session, league.orgs["prov"], {"contact_target": 120}, clock.now())
        with pytest.raises(QuotaRaised):  # all or nothing: the good value is not written either
            set_quota(session, league.orgs["qd-sn"], {"contact_target": 80, "organ_activities": 6}, clock.now())
        assert session.scalar(select(QuotaSetting).where(QuotaSetting.organisation_id == league.orgs["qd-sn"].id)) \
            is None
        for bad in (0, -1, 2.5, True, "3"):
            with pytest.raises(ValueError):
                set_quota(session, league.orgs["qd-sn"], {"cadre_activities": bad}, clock.now())
        with pytest.raises(ValueError, match="unknown quota fields"):
            set_quota(session, league.orgs["qd-sn"], {"parties": 1}, clock.now())
        set_quota(session, league.orgs["qd-sn"], {"part_time_contact_target": 10, "cadre_activities": 3}, clock.now())


def test_the_effective_quota_is_inherited_from_the_nearest_setting(sessions, clock, league):
    with sessions() as session:
        set_quota(session, league.orgs["qd"], {"part_time_contact_target": 30}, clock.now())
        set_quota(session, league.orgs["qd-sn"], {"part_time_contact_target": 10, "part_time_activities": 4},
                  clock.now())
        branch = effective_quota(session, league.orgs["qd-sn-gw-1"])
        assert branch.contacts_for("part_time") == 10 and branch.set_by["part_time_contact_target"] == "qd-sn"
        assert branch.activities_for("part_time") == 4 and branch.contacts_for("full_time") == 100
        assert effective_quota(session, league.orgs["qd"]).contacts_for("part_time") == 30
        assert effective_quota(session, league.orgs["jn-lx"]) == NOTICE_QUOTA  # another city
        set_quota(session, league.orgs["qd"], {"part_time_contact_target": 8}, clock.now())  # the city lowers later
        assert effective_quota(session, league.orgs["qd-sn-gw"]).contacts_for("part_time") == 8  # binds below too
        set_quota(session, league.orgs["qd-sn"], {"part_time_contact_target": None}, clock.now())  # cleared
        assert effective_quota(session, league.orgs["qd-sn"]).set_by["part_time_contact_target"] == "qd"
        bulk = effective_quotas(session, league.orgs["prov"])
        assert set(bulk) == {org.id for org in league.orgs.values()}
        assert all(bulk[org.id] == effective_quota(session, org) for org in league.orgs.values())
        assert effective_quotas(session, league.orgs["qd-sn"])[league.orgs["qd-sn-gw-1"].id] == \
            effective_quota(session, league.orgs["qd-sn-gw-1"])


# -------------------------------------------------------------------------------------- periods

@pytest.mark.parametrize("day,two_months,a_quarter", [
    ("2017-01-01", ("2017-01-01", "2017-02-28"), ("2017-01-01", "2017-03-31")),
    ("2017-05-20", ("2017-05-01", "2017-06-30"), ("2017-04-01", "2017-06-30")),
    ("2017-07-31", ("2017-07-01", "2017-08-31"), ("2017-07-01", "2017-09-30")),
    ("2017-12-31", ("2017-11-01", "2017-12-31"), ("2017-10-01", "2017-12-31")),
    ("2024-02-10", ("2024-01-01", "2024-02-29"), ("2024-01-01", "2024-03-31")),  # leap year
])
def test_periods(day, two_months, a_quarter):
    day = date.fromisoformat(day)
    two_months, a_quarter = (Period(*map(date.fromisoformat, pair)) for pair in (two_months, a_quarter))
    assert two_month_period(day) == two_months == cadre_period("full_time", day) == cadre_period("seconded", day)
    assert quarter(day) == a_quarter == cadre_period("part_time", day)


def test_a_year_has_six_two_month_periods_and_four_quarters():
    assert [p.label for p in periods_of_year("full_time", 2017)] == [
        "2017年1-2月", "2017年3-4月", "2017年5-6月", "2017年7-8月", "2017年9-10月", "2017年11-12月"]
    assert [p.label for p in periods_of_year("part_time", 2017)] == [f"2017年第{i}季度" for i in range(1, 5)]
    assert periods_of_year(None, 2017) == periods_of_year("part_time", 2017)


# ----------------------------------------------------------------------------------- compliance

def test_a_cadre_complies_with_five_kinds_in_two_months_and_revoked_records_do_not_count(sessions, clock, league):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        ids = [record(session, clock, league, kind, "2026-05-1" + str(i), cadre="zhang").id
               for i, kind in enumerate(CADRE_ACTIVITY_KINDS)]
        record(session, clock, league, "league_lecture", "2026-04-30", cadre="zhang")  # the period before
        result = cadre_compliance(session, zhang, date(2026, 6, 30))
        assert result.period == Period(date(2026, 5, 1), date(2026, 6, 30)) and result.quota == 5
        assert result.count == 5 and result.met and result.by_kind == dict.fromkeys(CADRE_ACTIVITY_KINDS, 1)
        from workflows.models import Activity
        revoke_activity(session, session.get(Activity, ids[0]), "不属实", clock.now())
        result = cadre_compliance(session, zhang, date(2026, 5, 1))
        assert result.count == 4 and not result.met and result.by_kind["practical_thing"] == 0
        record(session, clock, league, "league_lecture", "2026-06-01", cadre="zhang")
        assert not cadre_compliance(session, zhang, date(2026, 5, 1)).met  # five, but one kind missing


def test_a_part_time_cadre_counts_by_quarter_against_a_lowered_quota(sessions, clock, league):
    with sessions() as session:
        li = league.cadres["li"]
        for kind, day in [("practical_thing", "2026-04-02"), ("league_lecture", "2026-05-20"),
                          ("heart_to_heart", "2026-06-30")]:
            record(session, clock, league, kind, day, cadre="li")
        result = cadre_compliance(session, li, date(2026, 5, 1))
        assert result.period == Period(date(2026, 4, 1), date(2026, 6, 30)) and result.count == 3 and not result.met
        set_quota(session, league.orgs["qd-sn"], {"part_time_activities": 3}, clock.now())
        assert cadre_compliance(session, li, date(2026, 5, 1)).met
        set_quota(session, league.orgs["qd-sn"], {"part_time_activities": 4}, clock.now())
        record(session, clock, league, "heart_to_heart", "2026-06-01", cadre="li")
        assert not cadre_compliance(session, li, date(2026, 5, 1)).met  # four, of only three kinds


def test_a_leading_organ_complies_by_quarter_with_its_own_activities(sessions, clock, league):
    with sessions() as session:
        organ = league.orgs["qd-sn"]
        for kind in ORGAN_ACTIVITY_KINDS[:4]:
            record(session, clock, league, kind, "2026-05-06", org="qd-sn")
        for kind in CADRE_ACTIVITY_KINDS:
            record(session, clock, league, kind, "2026-05-06", cadre="zhang")  # its cadre's do not count
        result = organ_compliance(session, organ, date(2026, 6, 1))
        assert result.period == Period(date(2026, 4, 1), date(2026, 6, 30)) and result.count == 4 and not result.met
        last = record(session, clock, league, "self_designed", "2026-06-30", org="qd-sn")
        assert organ_compliance(session, organ, date(2026, 6, 1)).met
        revoke_activity(session, last, "重复填报", clock.now())
        assert not organ_compliance(session, organ, date(2026, 6, 1)).met
        with pytest.raises(ValueError, match="not a leading organ"):
            organ_compliance(session, league.orgs["qd-sn-gw"], date(2026, 6, 1))


def test_compliance_in_bulk_for_a_subtree(sessions, clock, league):
    with sessions() as session:
        for kind in CADRE_ACTIVITY_KINDS:
            record(session, clock, league, kind, "2026-05-06", cadre="zhang")
            record(session, clock, league, kind, "2026-05-06", cadre="wang")
        for kind in ORGAN_ACTIVITY_KINDS:
            record(session, clock, league, kind, "2026-04-06", org="jn-lx")
        record(session, clock, league, "volunteer_service", "2026-04-06", cadre="li")
        day = date(2026, 6, 15)
        cadres = cadre_compliance_in(session, league.orgs["prov"], day)
        assert {c.id: cadres[c.id].met for c in league.cadres.values()} == \
            {league.cadres["zhang"].id: True, league.cadres["wang"].id: True, league.cadres["li"].id: False}
        assert cadres[league.cadres["li"].id].count == 1 and cadres[league.cadres["li"].id].period == quarter(day)
        for cadre in league.cadres.values():
            assert cadres[cadre.id] == cadre_compliance(session, cadre, day)
        assert set(cadre_compliance_in(session, league.orgs["qd"], day)) == {league.cadres["zhang"].id,
                                                                             league.cadres["li"].id}
        organs = organ_compliance_in(session, league.orgs["prov"], day)
        assert set(organs) == {league.orgs[code].id for code in ("prov", "qd", "qd-sn", "jn", "jn-lx")}
        organ_codes = ("prov", "qd", "qd-sn", "jn", "jn-lx")
        assert [code for code in organ_codes if organs[league.orgs[code].id].met] == ["jn-lx"]
        assert organs[league.orgs["jn-lx"].id] == organ_compliance(session, league.orgs["jn-lx"], day)


def test_the_five_ones_check_of_the_process_uses_the_effective_quota(sessions, clock, league):
    with sessions() as session:
        for kind in CADRE_ACTIVITY_KINDS[:3]:
            record(session, clock, league, kind, "2026-05-06", cadre="zhang")
        check = ServiceCall(session=session, instance_id=None, organisation_id="qd-sn", now=clock.now(), task_data={})
        params = {"period_start": "2026-05-01", "period_end": "2026-06-30", "cadre": "zhang"}
        assert registry.call("check_five_ones", check, params)["met"] is False
        set_quota(session, league.orgs["qd-sn"], {"cadre_activities": 3}, clock.now())
        assert registry.call("check_five_ones", check, params)["met"] is True


def test_contact_progress_toward_the_target(sessions, clock, league):
    with sessions() as session:
        zhang, li = league.cadres["zhang"], league.cadres["li"]
        progress = contact_progress(session, zhang)  # xiaoming tagged, xiaohong without an industry
        assert (progress.counted, progress.contacts, progress.target, progress.reached) == (1, 2, 100, False)
        set_quota(session, league.orgs["qd-sn"], {"part_time_contact_target": 1}, clock.now())
        session.add(Contact(cadre_id=li.id, youth_id=league.youth["xiaoming"].id, since=clock.now()))
        session.flush()
        assert contact_progress(session, li).reached
        assert session.get(Youth, league.youth["xiaohong"].id).industry is None
