"""Campaigns (全团集中活动) over the API: launch, progress, dashboard, cancel.

The same calls as the campaign pages (web/campaigns.py): ``create_campaign`` checks the launching
organiser's rights and the no-raise rule, ``launch_campaign`` plans and enqueues the bulk launch,
``home_view`` / ``require_view`` decide who reads which part.
"""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_smorest import Blueprint

from engine.errors import NotAllowed
from workflows.campaign_dashboard import organisation_breakdown
from workflows.campaign_launch import cancel_campaign, launch_campaign, launch_progress
from workflows.campaigns import (
    STATUS_NAMES,
    Campaign,
    campaign_by_id,
    create_campaign,
    home_view,
    require_view,
    visible_campaigns,
)
from workflows.organisations import by_code

from ..extensions import db
from ..runtime import current_engine, current_jobs
from .auth import api_actor, requires
from .openapi import API_PREFIX, ID, INT4_MAX
from .pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("api_campaigns", __name__, url_prefix=f"{API_PREFIX}/campaigns",
                description="集中活动 / campaigns: launch, progress, dashboard, cancel")


class CampaignSchema(ma.Schema):
    """A campaign."""

    id = ma.fields.Integer(required=True)
    process_id = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    organisation = ma.fields.Function(lambda c: c.organisation.code, required=True,
                                      metadata={"description": "Root of the subtree it reaches"})
    target_kind = ma.fields.String(required=True, metadata={"enum": ["cadre", "organ", "city", "county"]})
    window_start = ma.fields.DateTime(required=True)
    window_end = ma.fields.DateTime(required=True)
    parameters = ma.fields.Dict(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(STATUS_NAMES)})
    total_targets = ma.fields.Integer(allow_none=True)
    launched_by = ma.fields.String(required=True)
    parent_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    launched_at = ma.fields.DateTime(allow_none=True)
    cancel_reason = ma.fields.String(allow_none=True)


class ChunkSchema(ma.Schema):
    """One background chunk of a launch."""

    number = ma.fields.Integer(required=True)
    size = ma.fields.Integer(required=True)
    launched = ma.fields.Integer(required=True)
    failed = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True)


class ProgressSchema(ma.Schema):
    """How far the launch has come."""

    campaign_id = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True)
    total = ma.fields.Integer(required=True)
    launched = ma.fields.Integer(required=True)
    failed = ma.fields.Integer(required=True)
    percent = ma.fields.Integer(required=True)
    done = ma.fields.Boolean(required=True)
    chunks = ma.fields.List(ma.fields.Nested(ChunkSchema), required=True)


class CountSchema(ma.Schema):
    """A campaign's numbers at one organisation (its own targets, or a subtree rolled up)."""

    organisation = ma.fields.String(required=True, attribute="code")
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    own_only = ma.fields.Boolean(required=True, metadata={"description": "Only the organisation's own targets (本级)"})
    total = ma.fields.Integer(required=True)
    launched = ma.fields.Integer(required=True)
    done = ma.fields.Integer(required=True)
    running = ma.fields.Integer(required=True)
    overdue_tasks = ma.fields.Integer(required=True)
    percent = ma.fields.Integer(required=True)


class DashboardSchema(ma.Schema):
    """A campaign seen from one organisation: its subtree's totals and one row per child."""

    organisation = ma.fields.Function(lambda b: b.organisation.code, required=True)
    totals = ma.fields.Nested(CountSchema, required=True)
    rows = ma.fields.List(ma.fields.Nested(CountSchema), required=True)


class LaunchArgs(ma.Schema):
    """A new campaign."""

    process_id = ma.fields.String(required=True, validate=ma.validate.Length(1, 255))
    title = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))
    organisation = ma.fields.String(required=True, validate=ma.validate.Length(1, 64),
                                    metadata={"description": "Root of the subtree to reach (you organise it)"})
    target_kind = ma.fields.String(required=True, validate=ma.validate.OneOf(["cadre", "organ", "city", "county"]))
    window_start = ma.fields.AwareDateTime(required=True)
    window_end = ma.fields.AwareDateTime(required=True)
    parameters = ma.fields.Dict(load_default=dict, metadata={"description": "The process's campaign parameters"})
    parent_id = ma.fields.Integer(load_default=None, allow_none=True, validate=ma.validate.Range(1, INT4_MAX))


class CampaignListArgs(PageArgs):
    """Filter by status."""

    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(list(STATUS_NAMES)))


class DashboardArgs(ma.Schema):
    """The organisation to see the campaign from (default: your own view of it)."""

    organisation = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 64))


class CampaignCancelArgs(ma.Schema):
    """Why the campaign is cancelled."""

    reason = ma.fields.String(required=True, validate=ma.validate.Length(1, 500))


CampaignPage = page_schema(CampaignSchema, "CampaignPage")


def _campaign(campaign_id: int) -> Campaign:
    campaign = campaign_by_id(db.session, campaign_id)
    if home_view(api_actor(), campaign, db.session) is None:
        raise NotAllowed(f"你无权查看集中活动 {campaign_id} / you may not see campaign {campaign_id}")
    return campaign


def _progress(campaign: Campaign) -> dict:
    return launch_progress(db.session, campaign).as_json()


@blp.route("")
@blp.arguments(CampaignListArgs, location="query")
@blp.response(200, CampaignPage)
@requires("campaigns:read")
def list_campaigns(args):
    """Campaigns rooted in or above a subtree I oversee, newest first"""
    offset = (decode_cursor(args["cursor"], offset=int) or {"offset": 0})["offset"]
    rows = visible_campaigns(db.session, api_actor(), args["limit"] + 1, max(offset, 0), args["status"])
    return page(rows, args["limit"], lambda _c: {"offset": max(offset, 0) + args["limit"]})


@blp.route("", methods=["POST"])
@blp.arguments(LaunchArgs)
@blp.response(201, CampaignSchema)
@requires("campaigns:write")
def launch(args):
    """Launch a campaign over a subtree I organise (scheduled if its window opens later)

    One instance per target is started in the background, in chunks; follow `GET /campaigns/{id}/progress`.
    A campaign under a parent may not raise what the parent set (不能层层加码): 422 names the fields.
    """
    now = current_engine().clock.now()
    campaign = create_campaign(db.session, api_actor(), process_id=args["process_id"], title=args["title"],
                               organisation_code=args["organisation"], target_kind=args["target_kind"],
                               window_start=args["window_start"], window_end=args["window_end"],
                               parameters=args["parameters"], now=now, parent_id=args["parent_id"])
    db.session.commit()
    launch_campaign(db.session, current_jobs(), campaign, now)
    return campaign_by_id(db.session, campaign.id), 201, {
        "Location": url_for("api_campaigns.get_campaign", campaign_id=campaign.id)}


@blp.route(f"/<{ID}:campaign_id>")
@blp.response(200, CampaignSchema)
@requires("campaigns:read")
def get_campaign(campaign_id: int):
    """A campaign"""
    return _campaign(campaign_id)


@blp.route(f"/<{ID}:campaign_id>/progress")
@blp.response(200, ProgressSchema)
@requires("campaigns:read")
def progress(campaign_id: int):
    """Launched out of total, overall and per chunk (cheap to poll)"""
    return _progress(_campaign(campaign_id))


@blp.route(f"/<{ID}:campaign_id>/dashboard")
@blp.arguments(DashboardArgs, location="query")
@blp.response(200, DashboardSchema)
@requires("campaigns:read")
def dashboard(args, campaign_id: int):
    """Completion per organisation one level down from `organisation` (staff over it may see it)"""
    campaign = _campaign(campaign_id)
    actor = api_actor()
    organisation = by_code(db.session, args["organisation"]) if args["organisation"] \
        else home_view(actor, campaign, db.session)
    require_view(actor, campaign, organisation)
    breakdown = organisation_breakdown(db.session, campaign, organisation, current_engine().clock.now())
    return breakdown


@blp.route(f"/<{ID}:campaign_id>/cancel", methods=["POST"])
@blp.arguments(CampaignCancelArgs)
@blp.response(200, CampaignSchema)
@requires("campaigns:write")
def cancel(args, campaign_id: int):
    """Cancel a campaign (its open instances are ended in the background); an organiser over its root may"""
    campaign = _campaign(campaign_id)
    cancel_campaign(db.session, current_jobs(), api_actor(), campaign, args["reason"], current_engine().clock.now())
    return campaign_by_id(db.session, campaign_id)
