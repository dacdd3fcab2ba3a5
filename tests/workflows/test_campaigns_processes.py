"""Every launchable process starts from its campaign parameters; parameters are checked field by field."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import FormInvalid, NotFound
from engine.models import HumanTask, ProcessInstance
from workflows.campaign_launch import count_targets, run_launch_chunk
from workflows.campaign_processes import PROCESSES, campaign_process, normalise_parameters, parse_moment
from workflows.campaigns import CampaignChunk, campaign_by_id
from workflows.organisations import by_code

from .campaign_support import RecordingQueue, deploy, launch, new_campaign, target_instances

# process, target kind → (parameters, who holds the first tasks: cadres, or the organisations whose staff do;
# 历下区团委 has no organiser, so 济南's acts for it)
CASES = {
    ("congress_study", "cadre"): ({"due_at": "2026-11-30", "theme": "学习贯彻党的十九大精神"},
                                  {"zhang", "li", "wang"}),
    ("service_month", "cadre"): ({"due_at": "2027-02-28T00:00"}, {"zhang", "li", "wang"}),
    ("education_practice", "cadre"): ({"choose_due": "2026-05-10", "close_at": "2026-09-30"},
                                      {"zhang", "li", "wang"}),
    ("five_ones_period", "cadre"): ({"period_start": "2026-05-01", "period_end": "2026-06-30"}, set()),
    ("five_ones_period", "organ"): ({"period_start": "2026-04-01", "period_end": "2026-06-30"}, set()),
    ("open_organ_day", "organ"): ({"quarter_end": "2026-07-01T00:00:00+08:00"}, {"prov", "qd", "qd-sn", "jn"}),
    ("quarterly_report", "city"): ({"report_due": "2026-06-20", "session_due": "2026-06-25T00:00:00+08:00"},
                                   {"qd", "jn"}),
    ("youth_story", "county"): ({"county_due": "2026-08-15", "city_due": "2026-09-30", "province_due": "2026-11-15"},
                                {"qd-sn", "jn"}),
}
TARGETS = {"cadre": 3, "organ": 5, "city": 2, "county": 2}


@pytest.mark.parametrize("process_id,target_kind", list(CASES), ids=[f"{p}-{k}" for p, k in CASES])
def test_each_process_starts_once_per_target_from_the_campaign_parameters(sessions, clock, league, league_engine,
                                                                          process_id, target_kind):
    params, holders = CASES[(process_id, target_kind)]
    deploy(sessions, league_engine, process_id)
    with sessions() as session:
        assert count_targets(session, by_code(session, "prov"), target_kind) == TARGETS[target_kind]
    campaign_id = new_campaign(sessions, clock, process_id=process_id, target=target_kind, params=params)
    for number in launch(sessions, RecordingQueue(), campaign_id, clock.now()):
        with sessions() as session:
            run_launch_chunk(session, league_engine, campaign_id, number)
    targets = target_instances(sessions, campaign_id)
    assert len(targets) == TARGETS[target_kind] and None not in targets.values()
    with sessions() as session:
        assert {c.state for c in session.scalars(select(CampaignChunk))} == {"done"}
        statuses = set(session.scalars(select(ProcessInstance.status).where(ProcessInstance.process_id == process_id)))
        assert statuses <= {"running"}
        tasks = list(session.scalars(select(HumanTask).where(HumanTask.process_id == process_id,
                                                             HumanTask.state.in_(HumanTask.OPEN_STATES))))
        held = {t.assignee for t in tasks if t.assignee} | {t.organisation_id for t in tasks if not t.assignee}
        assert holders <= held
        campaign = campaign_by_id(session, campaign_id)
        instance = session.get(ProcessInstance, next(iter(targets.values())))
        assert instance.definition_id == campaign.definition_id
        assert instance.business_key.startswith(f"campaign-{campaign_id}-")


def test_moments_are_read_in_china_time_and_dates_mean_the_end_of_the_day():
    assert parse_moment("2026-11-30").isoformat() == "2026-11-30T23:59:59+08:00"
    assert parse_moment("2026-11-30T18:00").isoformat() == "2026-11-30T18:00:00+08:00"
    assert parse_moment("2026-11-30T10:00:00+00:00").isoformat() == "2026-11-30T10:00:00+00:00"


def test_defaults_are_filled_in():
    params = normalise_parameters(campaign_process("congress_study"), {"due_at": "2026-11-30T00:00", "theme": " 主题 "})
    assert params == {"due_at": "2026-11-30T00:00:00+08:00", "remind_at": "2026-11-27T00:00:00+08:00",
                      "theme": "主题"}
    five = normalise_parameters(campaign_process("five_ones_period"),
                                {"period_start": "2026-05-01", "period_end": "2026-06-30"})
    assert five["check_at"] == "2026-07-01T09:00:00+08:00"


@pytest.mark.parametrize("process_id,raw,fields", [
    ("congress_study", {}, ["due_at"]),
    ("congress_study", {"due_at": "next friday"}, ["due_at"]),
    ("congress_study", {"due_at": "2026-11-30", "remind_at": "2026-12-01"}, ["remind_at"]),
    ("congress_study", {"due_at": "2026-11-30", "quota": "5"}, ["quota"]),
    ("congress_study", {"due_at": "2026-11-30", "theme": "长" * 201}, ["theme"]),
    ("youth_story", {"county_due": "2026-10-01", "city_due": "2026-09-30", "province_due": "2026-11-15"},
     ["county_due"]),
    ("five_ones_period", {"period_start": "2026-13-01", "period_end": "2026-06-30"}, ["period_start"]),
    ("quarterly_report", {"report_due": "2026-06-20"}, ["session_due"]),
])
def test_bad_parameters_are_named_field_by_field(process_id, raw, fields):
    with pytest.raises(FormInvalid) as refused:
        normalise_parameters(campaign_process(process_id), raw)
    assert [e.field for e in refused.value.errors] == fields
    assert all(" / " in e.message for e in refused.value.errors)  # 中文 / English


def test_a_process_that_is_not_a_campaign_is_refused():
    with pytest.raises(NotFound):
        campaign_process("micro_wish")
    assert set(PROCESSES) == {"congress_study", "service_month", "education_practice", "five_ones_period",
                              "open_organ_day", "quarterly_report", "youth_story"}


def test_campaign_fields_are_checked_together(sessions, clock, league, league_engine):
    deploy(sessions, league_engine, "open_organ_day")
    with pytest.raises(FormInvalid) as refused:
        new_campaign(sessions, clock, process_id="open_organ_day", target="cadre", title=" ", params={},
                     start=clock.now(), end=clock.now())
    assert {e.field for e in refused.value.errors} == {"title", "target_kind", "window_end", "quarter_end"}


def test_a_process_not_deployed_cannot_be_launched(sessions, clock, league):
    with pytest.raises(NotFound, match="尚未部署"):
        new_campaign(sessions, clock)
