"""The demo province's work: scored through the real paths (small), or in bulk (province), with the same ledger."""
from __future__ import annotations

from sqlalchemy import func, select

from workflows import points
from workflows.demo_facts import generate_demo_facts
from workflows.demo_province import generate_province
from workflows.models import Activity, Cadre
from workflows.points import PointEntry, PointTally, rebuild_tallies
from workflows.quotas import cadre_compliance


def _tally(session) -> dict:
    return {(row.cadre_id, row.year, row.category): (row.cents, row.entries)
            for row in session.scalars(select(PointTally))}


def test_the_small_demo_scores_every_fact_and_the_demo_cadres_meet_their_period(sessions, clock):
    now = clock.now()
    with sessions() as session:
        generate_province(session, "small", now=now)
        facts = generate_demo_facts(session, "small", now=now)
        session.commit()
        assert facts.activities == session.scalar(select(func.count()).select_from(Activity))
        assert facts.practice_items and facts.interactions and facts.articles
        categories = set(session.scalars(select(PointEntry.category).distinct()))
        assert {"activities", "contacts", "mobile_binding", "education_practice", "likes_comments",
                "article_sharing"} <= categories
        years = set(session.scalars(select(PointEntry.year).distinct()))
        assert years == {now.year - 1, now.year}
        written = _tally(session)
        rebuild_tallies(session)
        assert _tally(session) == written  # the real paths kept the tally in step with the ledger
        for code in ("c000001", "c000002", "c000003"):
            cadre = session.scalar(select(Cadre).where(Cadre.code == code))
            assert cadre_compliance(session, cadre, now.date()).met, code


def test_the_same_seed_gives_the_same_facts(sessions, clock):
    with sessions() as session:
        generate_province(session, "small", now=clock.now())
        generate_demo_facts(session, "small", seed=7, now=clock.now())
        first = sorted(session.execute(select(Activity.cadre_id, Activity.kind, Activity.held_on)).all(),
                       key=lambda row: (row[0] or 0, row[1], row[2]))
        session.rollback()
        generate_province(session, "small", now=clock.now())
        generate_demo_facts(session, "small", seed=7, now=clock.now())
        again = sorted(session.execute(select(Activity.cadre_id, Activity.kind, Activity.held_on)).all(),
                       key=lambda row: (row[0] or 0, row[1], row[2]))
        assert first == again


def test_the_bulk_path_writes_one_entry_per_activity_and_a_matching_tally(sessions, clock):
    now = clock.now()
    with sessions() as session:
        generate_province(session, "small", now=now)
        facts = generate_demo_facts(session, "province", now=now)  # the province's bulk path, on the small tree
        session.commit()
        cadre_activities = session.scalar(select(func.count()).select_from(Activity)
                                          .where(Activity.cadre_id.is_not(None)))
        assert facts.activities > cadre_activities > 0
        assert session.scalar(select(func.count()).select_from(PointEntry)
                              .where(PointEntry.category == "activities")) == cadre_activities
        written = _tally(session)
        rebuild_tallies(session)
        assert _tally(session) == written
        part_timer = session.scalar(select(Cadre).join(PointEntry, PointEntry.cadre_id == Cadre.id)
                                    .where(Cadre.kind == "part_time", PointEntry.category == "activities").limit(1))
        entry = session.scalar(select(PointEntry).where(PointEntry.cadre_id == part_timer.id,
                                                        PointEntry.category == "activities").limit(1))
        assert entry.points == points.rules_for(now.year).points_for("activities", "part_time")
        # a later record through the real path does not collide with the ids assigned in bulk
        from workflows.activities import record_activity
        record_activity(session, organisation=part_timer.organisation, kind="league_lecture", held_on="2026-04-30",
                        place="团委", youth_count=5, description="讲团课", evidence=["a.jpg"], now=now,
                        cadre=part_timer)
        session.flush()
