"""`flask demo load` leaves the demo province scored and ranked: points, stars and rankings show at once."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from web.extensions import db
from workflows import points, rankings
from workflows.demo_province import DEMO_PASSWORD
from workflows.models import Activity, Cadre


def test_after_a_small_demo_load_cadres_have_points_and_the_ranking_lists_them(app, client, runner, deployed,
                                                                               sign_in, clock):
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "recorded its work so far" in result.output and "ranked " in result.output
    year = points.league_year(clock.now())
    with app.app_context():
        first = db.session.scalar(select(Cadre).where(Cadre.code == "c000001"))
        score = points.cadre_score(db.session, first.id, year)
        assert score.total > 0 and score.by_category["activities"] > 0 and score.by_category["contacts"] > 0
        scores = points.year_scores(db.session, year)
        assert sum(1 for value in scores.values() if value > 0) > 200  # most of the 300 cadres scored
        assert points.history(db.session, first.id, year) or any(
            points.history(db.session, cadre_id, year) for cadre_id in list(scores)[:20])  # last year's, for 历年
        assert db.session.scalar(select(func.count()).select_from(Activity).where(Activity.cadre_id.is_(None))) > 0
        today = rankings.local_today(clock.now())
        assert rankings.latest_day(db.session) == today
        assert rankings.computed_days(db.session)[-1].year == year  # no snapshot of last year: see ranking_days
        assert len(rankings.computed_days(db.session)) == today.month  # this year's month ends so far, and today
        name = first.name

    sign_in("prov-organiser", DEMO_PASSWORD)
    html = client.get("/assessment/organisations/prov/cadres").get_data(as_text=True)
    listed = re.findall(r'<td class="num">(\d+)</td><td>([^<（]+)</td>.*?<a href="/points/(c\d+)"[^>]*>([\d.]+)</a>',
                        html, re.S)
    assert len(listed) == 50 and listed[0][0] == "1" and float(listed[0][3]) > 0
    top = client.get(f"/points/{listed[0][2]}").get_data(as_text=True)  # its breakdown, from the ranking
    assert listed[0][1] in top and listed[0][3] in top
    html = client.get("/assessment/organisations/qd-01/cadres").get_data(as_text=True)
    assert name in html
    html = client.get("/assessment/organisations/prov").get_data(as_text=True)
    assert "团省委 · 日常排名" in html and "青岛团市委" in html
