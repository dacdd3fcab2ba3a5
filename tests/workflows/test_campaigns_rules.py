"""Who may launch where, who sees what, and the no-raise rule under a parent campaign (不能层层加码)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import FormInvalid, NotAllowed
from workflows.campaign_launch import cancel_campaign
from workflows.campaign_processes import campaign_process, raised_limits
from workflows.campaigns import campaign_by_id, home_view, may_view, visible_campaigns
from workflows.organisations import by_code
from workflows.roles import load_actor

from .campaign_support import WINDOW_END, WINDOW_START, RecordingQueue, after, deploy, new_campaign


@pytest.fixture
def deployed(sessions, league, league_engine):
    deploy(sessions, league_engine, "congress_study")


@pytest.mark.parametrize("who,org", [("S_org", "qd"), ("Q_org", "jn"), ("Q_org", "prov"), ("zhang", "qd-sn"),
                                     ("S_insp", "qd-sn"), ("S_coord", "qd-sn-gw")])
def test_an_organiser_cannot_target_outside_their_subtree(sessions, clock, deployed, who, org):
    with pytest.raises(NotAllowed) as refused:
        new_campaign(sessions, clock, by=who, org=org)
    assert "组织者" in refused.value.message and "organiser" in refused.value.message


@pytest.mark.parametrize("who,org", [("Q_org", "qd"), ("Q_org", "qd-sn"), ("S_org", "qd-sn-gw"), ("P_org", "jn"),
                                     ("P_admin", "jn-lx")])
def test_an_organiser_may_target_their_own_subtree(sessions, clock, deployed, who, org):
    assert new_campaign(sessions, clock, by=who, org=org)


def test_staff_see_campaigns_of_their_subtree_and_those_above_it(sessions, clock, deployed):
    province = new_campaign(sessions, clock, by="P_org", org="prov", title="全省")
    qingdao = new_campaign(sessions, clock, by="Q_org", org="qd", title="青岛")
    jinan = new_campaign(sessions, clock, by="J_org", org="jn", title="济南")
    with sessions() as session:
        def titles(who):
            return [c.title for c in visible_campaigns(session, load_actor(session, who))]
        assert titles("P_org") == ["济南", "青岛", "全省"]
        assert titles("Q_org") == ["青岛", "全省"]
        assert titles("S_org") == ["青岛", "全省"]
        assert titles("zhang") == []  # a cadre has no staff role
        q_org, campaign = load_actor(session, "Q_org"), campaign_by_id(session, province)
        assert home_view(q_org, campaign, session).code == "qd"  # 青岛 reads the province's campaign for 青岛
        assert may_view(q_org, campaign, by_code(session, "qd-sn"))
        assert not may_view(q_org, campaign) and not may_view(q_org, campaign, by_code(session, "jn"))
        assert not may_view(q_org, campaign_by_id(session, jinan))
        assert home_view(load_actor(session, "J_org"), campaign_by_id(session, qingdao), session) is None
        with pytest.raises(NotAllowed):  # reading is not managing
            cancel_campaign(session, RecordingQueue(), q_org, campaign, "不想参加", clock.now())


@pytest.fixture
def parent(sessions, clock, deployed):
    """The province's campaign: due 30 November, window May–December."""
    return new_campaign(sessions, clock, by="P_org", org="prov", params={"due_at": "2026-11-30T00:00:00+08:00"})


def child(sessions, clock, parent, **kwargs):
    kwargs.setdefault("params", {"due_at": "2026-11-20"})
    return new_campaign(sessions, clock, by="Q_org", org="qd", parent_id=parent, **kwargs)


def test_a_lower_level_may_tighten_what_the_parent_set(sessions, clock, parent):
    campaign_id = child(sessions, clock, parent, start=after(WINDOW_START, days=5), end=after(WINDOW_END, days=-5))
    assert campaign_id


@pytest.mark.parametrize("kwargs,field", [
    ({"params": {"due_at": "2026-12-05"}}, "due_at"),
    ({"end": datetime(2027, 1, 10, tzinfo=timezone.utc)}, "window_end"),
    ({"start": datetime(2026, 4, 1, tzinfo=timezone.utc)}, "window_start"),
])
def test_a_lower_level_may_not_raise_what_the_parent_set(sessions, clock, parent, kwargs, field):
    with pytest.raises(FormInvalid) as refused:
        child(sessions, clock, parent, **kwargs)
    [error] = refused.value.errors
    assert error.field == field
    assert "不能层层加码" in error.message and "parent" in error.message


def test_a_campaign_under_a_parent_stays_inside_its_subtree(sessions, clock, deployed):
    qingdao = new_campaign(sessions, clock, by="Q_org", org="qd")
    with pytest.raises(NotAllowed, match="上级活动") as refused:
        new_campaign(sessions, clock, by="P_org", org="jn", parent_id=qingdao)
    assert "outside the parent campaign's subtree" in refused.value.message


def test_a_cancelled_parent_takes_no_children(sessions, clock, parent):
    with sessions() as session:
        cancel_campaign(session, None, load_actor(session, "P_org"), campaign_by_id(session, parent), "取消",
                        clock.now())
    with pytest.raises(FormInvalid) as refused:
        child(sessions, clock, parent)
    assert refused.value.errors[0].field == "parent_id"


def test_counts_may_not_be_raised_either():
    process = campaign_process("congress_study")
    limits = {"youth_count": "count", "due_at": "deadline"}
    errors = raised_limits(process, {"youth_count": 30, "due_at": "2026-11-30T00:00:00+08:00"},
                           {"youth_count": 50, "due_at": "2026-11-29T00:00:00+08:00"}, limits)
    assert [(e.field, "不能高于" in e.message) for e in errors] == [("youth_count", True)]
    assert raised_limits(process, {"youth_count": 30}, {"youth_count": 10}, limits) == []
