"""A cadre's points page (个人积分): this year's score by Annex-2 category with its caps, and previous years (历年).

``/points/`` takes a signed-in cadre to their own page; ``/points/<cadre code>`` is one cadre's
page, for the cadre themself and for anyone who may see their organisation's assessment
(``web.assessment.may_see``: an organiser, coordinator or inspector above, or a cadre of an
organisation above).  ``?year=`` shows an earlier year.  Scores come from the points ledger
(``workflows.points``): capped per category and per group, stars and diamonds; the rank over time
comes from the daily ranking snapshots.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from engine.errors import NotAllowed
from workflows import charts, points, quotas, rankings
from workflows.models import Cadre, Organisation
from workflows.roster import CADRE_KIND_NAMES_ZH

from .assessment import may_see
from .extensions import db
from .i18n import wording
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("points", __name__, url_prefix="/points")

FIRST_YEAR = 2000
RANK_HISTORY_DAYS = 400  # the rank chart: the kept snapshots of about the last year (month ends beyond 92 days)


def _cadre(code: str) -> Cadre:
    cadre = db.session.scalar(select(Cadre).where(Cadre.code == code))
    if cadre is None:
        abort(404)
    actor = current_actor()
    if actor.cadre_id != cadre.id and not may_see(actor, cadre.organisation):
        raise NotAllowed(f"你无权查看团干部「{cadre.name}」的积分 / you may not see the points of cadre {code}")
    return cadre


@bp.get("/")
@login_required
def mine():
    """A cadre's own points page."""
    actor = current_actor()
    if actor.cadre_id is None:
        raise NotAllowed("只有团干部有个人积分 / only cadres have points")
    code = db.session.scalar(select(Cadre.code).where(Cadre.id == actor.cadre_id))
    return redirect(url_for("points.cadre", code=code))


@bp.get("/<code>")
@login_required
def cadre(code: str):
    """One cadre's points for a year (this year by default), by category with caps, and every earlier year."""
    person = _cadre(code)
    now = current_engine().clock.now()
    this_year = points.league_year(now)
    year = request.args.get("year", this_year, type=int)
    if not FIRST_YEAR <= year <= this_year:
        abort(404)
    score = points.cadre_score(db.session, person.id, year)
    rules = points.rules_for(year)
    per_fact = {name: " / ".join(sorted({f"{rules.points_for(name, person.kind, variant):g}" for variant in rule.points},
                                        key=float, reverse=True))
                for name, rule in rules.categories.items()}
    earlier = points.history(db.session, person.id, this_year)
    organisation = db.session.get(Organisation, person.organisation_id)
    today = rankings.local_today(now)
    latest = rankings.latest_day(db.session)
    standing = rankings.cadre_standing(db.session, person, latest) if latest else None
    history = rankings.cadre_history(db.session, person, date.fromordinal(today.toordinal() - RANK_HISTORY_DAYS),
                                     today)
    chart = charts.rank_over_time([(p.day, p.rank) for p in history],
                                  title=_("%(name)s在本组织团干部中的排名", name=person.name), wording=wording())
    return render_template(
        "assessment/points.html", cadre=person, organisation=organisation, year=year, this_year=this_year,
        score=score, rules=rules, per_fact=per_fact, earlier=earlier, standing=standing, latest=latest, chart=chart,
        categories=points.CATEGORY_NAMES_ZH,
        cadre_kind_names=CADRE_KIND_NAMES_ZH, compliance=quotas.cadre_compliance(db.session, person, today),
        contacts=quotas.contact_progress(db.session, person), may_see_org=may_see(current_actor(), organisation))


__all__ = ["bp"]
