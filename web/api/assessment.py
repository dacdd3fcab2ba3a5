"""Points, rankings and monthly bulletins over the API (read only).

Who may see what is the assessment pages' own rule (``web.assessment.may_see``): staff over an
organisation, and a cadre for their own organisation and below.  Points are exact decimals, sent
as strings ("12.50").
"""
from __future__ import annotations

import re

import marshmallow as ma
from flask_smorest import Blueprint

from engine.errors import NotAllowed, NotFound
from workflows import bulletins, points, rankings
from workflows.models import Cadre, Organisation
from workflows.organisations import by_code

from ..assessment import may_see
from ..extensions import db
from ..runtime import current_engine
from .auth import api_actor, requires
from .openapi import API_PREFIX, ID
from .pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("api_assessment", __name__, url_prefix=f"{API_PREFIX}/assessment",
                description="考核 / assessment: points, rankings, monthly bulletins")

CODE = "string(maxlength=64)"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
POINTS = {"as_string": True, "places": 2}
RATE = {"as_string": True, "allow_none": True}


class ScoreSchema(ma.Schema):
    """A cadre's points for one year (capped), with stars and diamonds."""

    cadre_id = ma.fields.Integer(required=True)
    year = ma.fields.Integer(required=True)
    total = ma.fields.Decimal(required=True, **POINTS)
    by_category = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Decimal(**POINTS), required=True)
    stars = ma.fields.Integer(required=True)
    diamonds = ma.fields.Integer(required=True)
    total_stars = ma.fields.Integer(required=True)


class StandingSchema(ma.Schema):
    """An organisation's row of one day's ranking."""

    organisation = ma.fields.String(required=True, attribute="code")
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    day = ma.fields.Date(required=True)
    rank = ma.fields.Integer(allow_none=True)
    rank_among_siblings = ma.fields.Integer(allow_none=True)
    siblings = ma.fields.Integer(allow_none=True)
    score = ma.fields.Decimal(required=True, as_string=True)
    cadres = ma.fields.Integer(required=True)
    average_points = ma.fields.Decimal(**RATE)
    compliance_rate = ma.fields.Decimal(**RATE)
    campaign_rate = ma.fields.Decimal(**RATE)
    binding_rate = ma.fields.Decimal(**RATE)
    contacts = ma.fields.Integer(required=True)
    bound = ma.fields.Integer(required=True)


class CadreStandingSchema(ma.Schema):
    """A cadre's row of one day's ranking."""

    cadre_id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    organisation_name = ma.fields.String(required=True)
    rank = ma.fields.Integer(required=True)
    points = ma.fields.Decimal(required=True, **POINTS)
    contacts = ma.fields.Integer(required=True)
    bound = ma.fields.Integer(required=True)
    periods_met = ma.fields.Integer(required=True)
    periods_due = ma.fields.Integer(required=True)
    compliance_rate = ma.fields.Decimal(**RATE)


class FactsSchema(ma.Schema):
    """What happened in the month in a subtree."""

    activities = ma.fields.Integer(required=True)
    revoked = ma.fields.Integer(required=True)
    campaign_done = ma.fields.Integer(required=True)
    campaign_total = ma.fields.Integer(required=True)


class BulletinSchema(ma.Schema):
    """The monthly bulletin (月度通报) of an organisation."""

    title = ma.fields.String(required=True)
    month = ma.fields.String(required=True)
    snapshot_day = ma.fields.Date(required=True)
    standing = ma.fields.Nested(StandingSchema, required=True)
    facts = ma.fields.Nested(FactsSchema, required=True)
    children = ma.fields.List(ma.fields.Nested(StandingSchema), required=True)
    cadres = ma.fields.List(ma.fields.Nested(CadreStandingSchema), required=True)
    cadre_total = ma.fields.Integer(required=True)
    named_children = ma.fields.List(ma.fields.Nested(StandingSchema), required=True,
                                    metadata={"description": "The last-ranked children, named in the bulletin"})
    named_cadres = ma.fields.List(ma.fields.Nested(CadreStandingSchema), required=True)
    revoked_records = ma.fields.Function(lambda b: len(b.revoked), required=True)


class YearArgs(ma.Schema):
    """Which year (the current league year if omitted)."""

    year = ma.fields.Integer(load_default=None, validate=ma.validate.Range(2000, 2100))


class DayArgs(ma.Schema):
    """Which day's ranking (the latest computed on or before it; the latest if omitted)."""

    day = ma.fields.Date(load_default=None)


class ChildrenArgs(PageArgs, DayArgs):
    """Ranking of the children."""

    sort = ma.fields.String(load_default="score", validate=ma.validate.OneOf(list(rankings.ORG_SORTS)))


class CadreRankingArgs(PageArgs, DayArgs):
    """Ranking of the cadres."""

    scope = ma.fields.String(load_default="subtree", validate=ma.validate.OneOf(list(rankings.SCOPES)),
                             metadata={"description": "subtree: the whole subtree; own: at home there"})


StandingPage = page_schema(StandingSchema, "StandingPage")
CadreStandingPage = page_schema(CadreStandingSchema, "CadreStandingPage")


def _visible(code: str) -> Organisation:
    org = by_code(db.session, code)
    if not may_see(api_actor(), org):
        raise NotAllowed(f"你无权查看「{org.name}」的考核情况 / you may not see the assessment of {code}")
    return org


def _day(args):
    day = rankings.latest_day(db.session, on_or_before=args["day"]) if args["day"] else rankings.latest_day(db.session)
    if day is None:
        raise NotFound("还没有计算过排名 / no ranking has been computed yet")
    return day


def _offset(args) -> int:
    return max((decode_cursor(args["cursor"], offset=int) or {"offset": 0})["offset"], 0)


@blp.route(f"/cadres/<{ID}:cadre_id>/points")
@blp.arguments(YearArgs, location="query")
@blp.response(200, ScoreSchema)
@requires("assessment:read")
def cadre_points(args, cadre_id: int):
    """A cadre's points for a year, by category, capped, with stars and diamonds"""
    cadre = db.session.get(Cadre, cadre_id)
    if cadre is None:
        raise NotFound(f"团干部 {cadre_id} 不存在 / no cadre {cadre_id}")
    actor = api_actor()
    if actor.cadre_id != cadre.id and not may_see(actor, cadre.organisation):
        raise NotAllowed(f"你无权查看团干部 {cadre_id} 的积分 / you may not see cadre {cadre_id}'s points")
    year = args["year"] or points.league_year(current_engine().clock.now())
    return points.cadre_score(db.session, cadre_id, year)


@blp.route(f"/organisations/<{CODE}:code>")
@blp.arguments(DayArgs, location="query")
@blp.response(200, StandingSchema)
@requires("assessment:read")
def organisation_standing(args, code: str):
    """An organisation's standing in a day's ranking (its subtree's figures, its rank among its siblings)"""
    org = _visible(code)
    standing = rankings.organisation_standing(db.session, org, _day(args))
    if standing is None:
        raise NotFound(f"「{org.name}」不在该日排名中 / {code} is not in that day's ranking")
    return standing


@blp.route(f"/organisations/<{CODE}:code>/children")
@blp.arguments(ChildrenArgs, location="query")
@blp.response(200, StandingPage)
@requires("assessment:read")
def children_ranking(args, code: str):
    """The children of an organisation ranked among themselves (by score, points, compliance, campaigns, binding)"""
    org, offset = _visible(code), _offset(args)
    rows = rankings.child_ranking(db.session, org, _day(args), sort=args["sort"], limit=args["limit"] + 1,
                                  offset=offset)
    return page(rows, args["limit"], lambda _row: {"offset": offset + args["limit"]})


@blp.route(f"/organisations/<{CODE}:code>/cadres")
@blp.arguments(CadreRankingArgs, location="query")
@blp.response(200, CadreStandingPage)
@requires("assessment:read")
def cadre_ranking(args, code: str):
    """The cadres of an organisation (its subtree, or `scope=own`) ranked by points"""
    org, offset = _visible(code), _offset(args)
    rows = rankings.cadre_ranking(db.session, org, _day(args), args["scope"], limit=args["limit"] + 1, offset=offset)
    return page(rows, args["limit"], lambda _row: {"offset": offset + args["limit"]})


@blp.route(f"/bulletins/<{CODE}:code>/<string(length=7):month>")
@blp.response(200, BulletinSchema)
@requires("assessment:read")
def monthly_bulletin(code: str, month: str):
    """The monthly bulletin of an organisation (`month` as YYYY-MM), read from the month's last ranking"""
    org = _visible(code)
    if not MONTH.match(month):
        raise NotFound(f"月份应为 YYYY-MM / month must be YYYY-MM, not {month!r}")
    try:
        return bulletins.monthly_bulletin(db.session, org, month)
    except ValueError as error:  # e.g. no snapshot for that month
        raise NotFound(str(error)) from None
