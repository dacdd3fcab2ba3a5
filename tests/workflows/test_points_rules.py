"""Annex 2 (2017年团干部直接联系青年积分规则), rule by rule, for both rule sets, through the real ledger.

The table below is Annex 2 restated: each row is one kind of fact, its points for full-time and
seconded cadres and for part-time cadres, and its category's cap.  Every test reads from it.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from workflows import points
from workflows.points import (ANNEX_2_2017, CATEGORIES, PointEntry, PointTally, award, badges, cadre_score, history,
                              league_year, rebuild_tallies, revoke_source, rules_for, score_from_raw, score_years,
                              year_scores)

D = Decimal
# category, variant, 专职/挂职, 兼职, category cap
ANNEX_2 = [
    ("contacts", None, "0.1", "1", "10"),            # 每联系1个小伙伴（须“职业”标签齐全）
    ("activities", None, "1", "1.5", "35"),          # 填写1次
    ("education_practice", None, "1.5", "1.5", "12"),  # 每完成任务清单中的1项，同一项不重复计分
    ("youth_voice", "question", "1", "1", "10"),     # 回复“青年之声”问题1次
    ("youth_voice", "hero_board", "0.5", "0.5", "10"),  # 回复“英雄帖”区域问题1次
    ("micro_wishes", None, "2", "2", "10"),          # 回复微心愿1次
    ("mobile_binding", None, "0.1", "1", "10"),      # 每有1名小伙伴绑定手机端
    ("likes_comments", "like", "0.5", "0.5", "8"),   # 每次点赞
    ("likes_comments", "comment", "0.5", "0.5", "8"),  # 每次留言
    ("article_sharing", None, "0.5", "0.5", "5"),    # 每分享1篇
]
CADRE_OF_KIND = {"full_time": "zhang", "seconded": "wang", "part_time": "li"}
SOURCE_OF = {"contacts": "contact", "activities": "activity", "education_practice": "practice_item",
             "youth_voice": "voice_answer", "micro_wishes": "wish_reply", "mobile_binding": "binding",
             "likes_comments": "interaction", "article_sharing": "article"}
CASES = [pytest.param(row, kind, id=f"{row[0]}-{row[1] or 'default'}-{kind}") for row in ANNEX_2
         for kind in CADRE_OF_KIND]
AT = datetime(2017, 6, 1, 4, 0, tzinfo=timezone.utc)


def per_fact(row, kind):
    return D(row[3] if kind == "part_time" else row[2])


def give(session, cadre, category, key, at=AT, variant=None, source_id=None):
    return award(session, cadre, category, key, at, SOURCE_OF[category], source_id or key, variant=variant)


# ------------------------------------------------------------------------- the rules as data

def test_the_rule_table_is_annex_2():
    assert set(ANNEX_2_2017.categories) == set(CATEGORIES)
    for category, variant, full, part, cap in ANNEX_2:
        rule = ANNEX_2_2017.categories[category]
        assert rule.cap == D(cap)
        for kind in ("full_time", "seconded"):
            assert ANNEX_2_2017.points_for(category, kind, variant) == D(full)
        assert ANNEX_2_2017.points_for(category, "part_time", variant) == D(part)
    assert ANNEX_2_2017.group_caps == {"interaction": D(18)}
    assert ANNEX_2_2017.group_of("mobile_binding") == ANNEX_2_2017.group_of("likes_comments") == "interaction"
    assert ANNEX_2_2017.total_cap == sum(rule.cap for name, rule in ANNEX_2_2017.categories.items()
                                         if rule.group is None) + D(18) == D(100)


@pytest.mark.parametrize("raw,capped_total", [
    ({}, "0"),
    ({"mobile_binding": 1000, "likes_comments": 800}, "18"),        # 10 + 8 within the 18 of 互动情况
    ({"mobile_binding": 5000, "likes_comments": 5000}, "18"),       # each capped first
    ({"mobile_binding": 300, "likes_comments": 5000}, "11"),        # 3 + 8
    ({name: 1_000_000 for name in CATEGORIES}, "100"),             # everything full: exactly 100
    ({"activities": 3450, "contacts": 999}, "44.49"),
])
def test_caps_from_raw_points(raw, capped_total):
    capped, total = score_from_raw(raw, ANNEX_2_2017)
    assert points.from_cents(total) == D(capped_total)
    for name, rule in ANNEX_2_2017.categories.items():
        assert capped[name] == min(raw.get(name, 0), points.to_cents(rule.cap))


@pytest.mark.parametrize("total,stars,diamonds", [
    ("0", 0, 0), ("4.99", 0, 0), ("5", 1, 0), ("9.9", 1, 0), ("10", 2, 0), ("19.99", 3, 0), ("20", 0, 1),
    ("24.5", 0, 1), ("25", 1, 1), ("39.9", 3, 1), ("40", 0, 2), ("79.99", 3, 3), ("80", 0, 4), ("99.9", 3, 4),
    ("100", 0, 5),
])
def test_a_star_every_5_points_and_a_diamond_every_4_stars(total, stars, diamonds):
    assert badges(D(total), ANNEX_2_2017) == (stars, diamonds)


def test_a_later_years_rules_can_be_added(monkeypatch):
    rules_2018 = replace(ANNEX_2_2017, first_year=2018, categories={
        **ANNEX_2_2017.categories, "article_sharing": replace(ANNEX_2_2017.categories["article_sharing"], cap=D(8))})
    monkeypatch.setattr(points, "RULE_SETS", (ANNEX_2_2017, rules_2018))
    assert rules_for(2016) is ANNEX_2_2017 and rules_for(2017) is ANNEX_2_2017
    assert rules_for(2018) is rules_2018 and rules_for(2030) is rules_2018
    assert score_from_raw({"article_sharing": 1000}, rules_for(2018))[1] == 800


def test_the_year_is_the_beijing_calendar_year():
    assert league_year(datetime(2017, 12, 31, 15, 59, tzinfo=timezone.utc)) == 2017  # 23:59 in Beijing
    assert league_year(datetime(2017, 12, 31, 16, 0, tzinfo=timezone.utc)) == 2018   # 00:00 on 1 January
    with pytest.raises(ValueError):
        league_year(datetime(2017, 12, 31, 16, 0))


# ------------------------------------------------------------------ every rule, through the ledger

@pytest.mark.parametrize("row,kind", CASES)
def test_each_rule_scores_per_fact_up_to_its_cap(sessions, league, row, kind):
    category, variant, _, _, cap = row
    each, cap = per_fact(row, kind), D(cap)
    with sessions() as session:
        cadre = session.get(type(league.cadres["zhang"]), league.cadres[CADRE_OF_KIND[kind]].id)
        first = give(session, cadre, category, "fact-0", variant=variant)
        assert first.points == each and first.year == 2017 and first.revoked_at is None
        assert cadre_score(session, cadre.id, 2017).by_category[category] == each
        needed = math.ceil(cap / each)  # facts that fill the cap (24 × 1.5 = 36 > 35 for a part-time cadre)
        for i in range(1, needed):
            give(session, cadre, category, f"fact-{i}", variant=variant)
        score = cadre_score(session, cadre.id, 2017)
        assert score.by_category[category] == cap and score.facts[category] == needed
        give(session, cadre, category, f"fact-{needed}", variant=variant)  # one more: nothing more
        score = cadre_score(session, cadre.id, 2017)
        assert score.by_category[category] == cap and score.raw_by_category[category] == (needed + 1) * each
        assert score.total == cap and year_scores(session, 2017)[cadre.id] == cap
        others = [name for name in CATEGORIES if name != category]
        assert all(score.by_category[name] == 0 for name in others)


@pytest.mark.parametrize("kind", list(CADRE_OF_KIND))
def test_everything_full_is_exactly_100_points_and_5_diamonds(sessions, league, kind):
    with sessions() as session:
        cadre = league.cadres[CADRE_OF_KIND[kind]]
        for category, variant, full, part, cap in ANNEX_2:
            each = D(part if kind == "part_time" else full)
            for i in range(int(D(cap) / each) + 2):
                give(session, cadre, category, f"{variant}-{i}", variant=variant)
        score = cadre_score(session, cadre.id, 2017)
        assert score.total == D("100.00") and (score.stars, score.diamonds, score.total_stars) == (0, 5, 20)
        assert score.by_category == {"contacts": 10, "activities": 35, "education_practice": 12, "youth_voice": 10,
                                     "micro_wishes": 10, "mobile_binding": 10, "likes_comments": 8,
                                     "article_sharing": 5}
        assert year_scores(session, 2017)[cadre.id] == D("100.00")


def test_interaction_is_binding_up_to_10_and_likes_up_to_8(sessions, league):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        for i in range(30):
            give(session, zhang, "likes_comments", f"like-{i}", variant="like")  # 15 raw → 8
        for i in range(45):
            give(session, zhang, "mobile_binding", f"youth:{i}")  # 4.5
        score = cadre_score(session, zhang.id, 2017)
        assert (score.by_category["likes_comments"], score.by_category["mobile_binding"]) == (8, D("4.5"))
        assert score.total == D("12.5") and year_scores(session, 2017)[zhang.id] == D("12.5")


# ------------------------------------------------------------------------------- de-duplication

def test_the_same_fact_scores_once(sessions, league):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        assert give(session, zhang, "education_practice", "item:retake_oath") is not None
        assert give(session, zhang, "education_practice", "item:retake_oath", at=AT + timedelta(days=30),
                    source_id="another-instance") is None  # same item again, from another instance: never twice
        assert give(session, zhang, "youth_voice", "question:7", variant="question") is not None
        assert give(session, zhang, "youth_voice", "question:7", variant="hero_board") is None  # one question once
        assert give(session, league.cadres["li"], "youth_voice", "question:7") is not None  # another cadre's answer
        assert give(session, zhang, "micro_wishes", "item:retake_oath") is not None  # keys are per category
        count = session.scalar(select(func.count()).select_from(PointEntry).where(PointEntry.cadre_id == zhang.id))
        assert count == 3
        assert cadre_score(session, zhang.id, 2017).by_category["education_practice"] == D("1.5")
        next_year = datetime(2018, 5, 1, tzinfo=timezone.utc)
        assert give(session, zhang, "education_practice", "item:retake_oath", at=next_year)  # a new year: again


def test_decimal_points_are_exact(sessions, league):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        for i in range(3):
            give(session, zhang, "contacts", f"youth:{i}")
        score = cadre_score(session, zhang.id, 2017)
        assert score.by_category["contacts"] == D("0.3") and str(score.total) == "0.30"  # never 0.30000000000000004
        for i in range(3, 100):
            give(session, zhang, "contacts", f"youth:{i}")
        assert cadre_score(session, zhang.id, 2017).by_category["contacts"] == D(10)  # 0.1 × 100 == 10
        assert year_scores(session, 2017)[zhang.id] == D(10) and str(year_scores(session, 2017)[zhang.id]) == "10.00"
        session.commit()
    with sessions() as session:  # read back from the database
        values = set(session.scalars(select(PointEntry.points).where(PointEntry.cadre_id == zhang.id)))
        assert values == {D("0.10")} and all(isinstance(v, Decimal) for v in values)


# ------------------------------------------------------------------------- the yearly reset

def test_points_restart_on_1_january_and_earlier_years_go_to_history(sessions, league):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        new_year = datetime(2017, 12, 31, 16, 0, tzinfo=timezone.utc)  # 2018-01-01 00:00 in Beijing
        for i in range(40):
            give(session, zhang, "activities", f"activity:{i}", at=new_year - timedelta(minutes=1))
        give(session, zhang, "micro_wishes", "wish:1", at=datetime(2016, 7, 1, tzinfo=timezone.utc))
        give(session, zhang, "activities", "activity:40", at=new_year)
        assert cadre_score(session, zhang.id, 2017).total == 35
        now = cadre_score(session, zhang.id, 2018)
        assert now.total == 1 and now.facts["activities"] == 1
        assert score_years(session, zhang.id) == [2018, 2017, 2016]
        hall = history(session, zhang.id, before_year=2018)
        assert [(s.year, s.total, s.stars, s.diamonds) for s in hall] == [(2017, 35, 3, 1), (2016, 2, 0, 0)]
        assert hall[0].facts["activities"] == 40 and hall[0].raw_by_category["activities"] == 40
        assert year_scores(session, 2018)[zhang.id] == 1 and year_scores(session, 2017)[zhang.id] == 35


# ---------------------------------------------------------------------------------- revocation

def test_a_revoked_source_loses_its_points(sessions, league, clock):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        for i in range(36):
            give(session, zhang, "activities", f"activity:{i}", source_id=str(i))
        assert cadre_score(session, zhang.id, 2017).total == 35
        assert revoke_source(session, "activity", "3", "电话抽查不属实 / found false", clock.now()) == 1
        assert cadre_score(session, zhang.id, 2017).total == 35  # the 36th record now counts
        assert revoke_source(session, "activity", "4", "不属实", clock.now()) == 1
        score = cadre_score(session, zhang.id, 2017)
        assert score.total == 34 and score.facts["activities"] == 34
        assert year_scores(session, 2017)[zhang.id] == 34
        assert revoke_source(session, "activity", "4", "again", clock.now()) == 0  # already revoked
        assert revoke_source(session, "activity", "999", "unknown", clock.now()) == 0
        entry = session.scalar(select(PointEntry).where(PointEntry.source_id == "4"))
        assert entry.revoked_at == clock.now() and entry.revoked_reason == "不属实"
        assert give(session, zhang, "activities", "activity:4", source_id="4") is None  # a revoked fact stays revoked


def test_the_tally_matches_the_ledger(sessions, league, clock):
    with sessions() as session:
        zhang, li = league.cadres["zhang"], league.cadres["li"]
        for i in range(12):
            give(session, zhang, "contacts", f"youth:{i}", source_id=f"c{i}")
            give(session, li, "contacts", f"youth:{i}", source_id=f"c{i}")
        revoke_source(session, "contact", "c3", "duplicate", clock.now())
        before = session.execute(select(PointTally.year, PointTally.cadre_id, PointTally.category, PointTally.cents,
                                        PointTally.entries).order_by(PointTally.cadre_id)).all()
        assert rebuild_tallies(session, 2017) == 2
        after = session.execute(select(PointTally.year, PointTally.cadre_id, PointTally.category, PointTally.cents,
                                       PointTally.entries).order_by(PointTally.cadre_id)).all()
        assert before == after == [(2017, zhang.id, "contacts", 110, 11), (2017, li.id, "contacts", 1100, 11)]


def test_year_scores_cover_a_subtree_with_zeros(sessions, league):
    with sessions() as session:
        zhang, li, wang = (league.cadres[name] for name in ("zhang", "li", "wang"))
        give(session, zhang, "micro_wishes", "wish:1")
        give(session, wang, "micro_wishes", "wish:2")
        assert year_scores(session, 2017) == {zhang.id: 2, li.id: 0, wang.id: 2}
        assert year_scores(session, 2017, league.orgs["qd"]) == {zhang.id: 2, li.id: 0}
        assert year_scores(session, 2017, league.orgs["qd-sn-gw"]) == {li.id: 0}
        assert year_scores(session, 2019) == {zhang.id: 0, li.id: 0, wang.id: 0}


def test_unknown_categories_variants_and_sources_are_refused(sessions, league):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        with pytest.raises(ValueError, match="unknown points category"):
            award(session, zhang, "karaoke", "k", AT, "activity", "1")
        with pytest.raises(ValueError, match="has no variant"):
            award(session, zhang, "youth_voice", "k", AT, "voice_answer", "1", variant="shouting")
        with pytest.raises(ValueError, match="unknown source kind"):
            award(session, zhang, "activities", "k", AT, "rumour", "1")
