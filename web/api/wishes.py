"""A young person's micro-wishes (微心愿) and questions (青年之声): post, follow, confirm, withdraw, rate.

The use cases are ``workflows/youth_requests.py``; who holds a wish is ``workflows/wishes.py``.
"""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_smorest import Blueprint
from sqlalchemy import select

from engine.errors import NotFound
from engine.models import ProcessInstance
from workflows import youth_requests
from workflows.instance_rights import check_view_instance
from workflows.wishes import wish_status

from ..extensions import db
from ..runtime import current_engine
from .auth import api_actor, requires
from .openapi import API_PREFIX, INT4_MAX
from .pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("api_wishes", __name__, url_prefix=API_PREFIX,
                description="微心愿和青年之声 / a young person's micro-wishes and questions")

KEY = "string(maxlength=255)"


class KnownCadreSchema(ma.Schema):
    """A cadre who contacts me."""

    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    organisation = ma.fields.Function(lambda c: c.organisation.code, required=True)
    organisation_name = ma.fields.Function(lambda c: c.organisation.name, required=True)


class WishStatusSchema(ma.Schema):
    """Where a wish is and who holds it."""

    business_key = ma.fields.String(required=True)
    instance_id = ma.fields.Integer(required=True)
    title = ma.fields.String(allow_none=True)
    stage = ma.fields.String(required=True, metadata={"description": "cadre_reply, cadre_fulfil, pool, "
                             "awaiting_confirmation, confirmed, auto_confirmed, withdrawn, cancelled, error"})
    text = ma.fields.String(required=True, metadata={"description": "The stage in plain words, for the youth"})
    holder_role = ma.fields.String(allow_none=True)
    holder_organisation = ma.fields.String(allow_none=True)
    holder_organisation_name = ma.fields.String(allow_none=True)
    holder_assignee = ma.fields.String(allow_none=True)
    holder_name = ma.fields.String(allow_none=True)
    since = ma.fields.DateTime(allow_none=True)


class QuestionStatusSchema(ma.Schema):
    """Where a question is, and its answer once there is one."""

    business_key = ma.fields.String(required=True)
    instance_id = ma.fields.Integer(required=True)
    question = ma.fields.String(allow_none=True)
    stage = ma.fields.String(required=True, metadata={"description": "awaiting_answer, hero_board, "
                             "awaiting_rating, closed, cancelled, error"})
    text = ma.fields.String(required=True)
    holder_assignee = ma.fields.String(allow_none=True)
    holder_organisation = ma.fields.String(allow_none=True)
    answer = ma.fields.String(allow_none=True)
    answered_by = ma.fields.String(allow_none=True)
    rating = ma.fields.Integer(allow_none=True)
    since = ma.fields.DateTime(allow_none=True)


CadrePage = page_schema(KnownCadreSchema, "KnownCadrePage")
WishPage = page_schema(WishStatusSchema, "WishPage")
QuestionPage = page_schema(QuestionStatusSchema, "QuestionPage")
_CADRE_ID = ma.fields.Integer(required=True, validate=ma.validate.Range(1, INT4_MAX),
                              metadata={"description": "One of `GET /me/cadres`"})


class WishArgs(ma.Schema):
    """A new micro-wish."""

    cadre_id = _CADRE_ID
    title = ma.fields.String(required=True, validate=ma.validate.Length(2, 100))
    description = ma.fields.String(required=True, validate=ma.validate.Length(2, 2000))


class QuestionArgs(ma.Schema):
    """A new question or opinion."""

    cadre_id = _CADRE_ID
    question = ma.fields.String(required=True, validate=ma.validate.Length(2, 2000))


class ConfirmArgs(ma.Schema):
    """Confirmation of a fulfilled wish, with an optional rating."""

    rating = ma.fields.Integer(load_default=None, allow_none=True, validate=ma.validate.Range(1, 5))
    comment = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))


class WithdrawArgs(ma.Schema):
    """Why the wish is withdrawn (optional)."""

    reason = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))


class RateArgs(ma.Schema):
    """A rating of an answer."""

    rating = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 5))
    comment = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))


def _wish(instance):
    return wish_status(db.session, instance.business_key)


def _question(instance):
    return youth_requests.question_status(db.session, instance)


def _visible(process_id: str, business_key: str):
    """The newest instance of a key, if the caller may see it (theirs, or staff over it, or a holder)."""
    instance = db.session.scalar(select(ProcessInstance).where(ProcessInstance.business_key == business_key,
                                                               ProcessInstance.process_id == process_id)
                                 .order_by(ProcessInstance.id.desc()).limit(1))
    if instance is None:
        raise NotFound(f"没有编号为 {business_key} 的记录 / nothing with key {business_key!r}")
    check_view_instance(db.session, api_actor(), instance)
    return instance


def _own_page(process_id: str, args, present):
    before = (decode_cursor(args["cursor"], id=int) or {}).get("id")
    rows = youth_requests.own_requests(db.session, api_actor(), process_id, args["limit"] + 1, before)
    return page(rows, args["limit"], lambda i: {"id": i.id}, present)


@blp.route("/me/cadres")
@blp.arguments(PageArgs, location="query")
@blp.response(200, CadrePage)
@requires("wishes:read")
def my_cadres(args):
    """The cadres who contact me (a young person): whom I may send a wish or a question"""
    after = (decode_cursor(args["cursor"], id=int) or {"id": 0})["id"]
    rows = youth_requests.known_cadres(db.session, api_actor(), args["limit"] + 1, after)
    return page(rows, args["limit"], lambda c: {"id": c.id})


@blp.route("/wishes", methods=["POST"])
@blp.arguments(WishArgs)
@blp.response(201, WishStatusSchema)
@requires("wishes:write")
def post_wish(args):
    """Post a micro-wish to a cadre who contacts me

    The cadre has 3 days to reply; a wish beyond their means goes to the county's wish pool.
    """
    instance = youth_requests.post_wish(db.session, current_engine(), api_actor(), args["cadre_id"], args["title"],
                                        args["description"])
    db.session.commit()
    return wish_status(db.session, instance.business_key), 201, {
        "Location": url_for("api_wishes.get_wish", business_key=instance.business_key)}


@blp.route("/wishes")
@blp.arguments(PageArgs, location="query")
@blp.response(200, WishPage)
@requires("wishes:read")
def list_wishes(args):
    """My micro-wishes, newest first"""
    return _own_page(youth_requests.WISH_PROCESS, args, _wish)


@blp.route(f"/wishes/<{KEY}:business_key>")
@blp.response(200, WishStatusSchema)
@requires("wishes:read")
def get_wish(business_key: str):
    """Where a wish is, who holds it and since when"""
    return _wish(_visible(youth_requests.WISH_PROCESS, business_key))


@blp.route(f"/wishes/<{KEY}:business_key>/confirm", methods=["POST"])
@blp.arguments(ConfirmArgs)
@blp.response(200, WishStatusSchema)
@requires("wishes:write")
def confirm_wish(args, business_key: str):
    """Confirm my fulfilled wish, rating it 1-5 stars if I like (409 if it is not awaiting confirmation)"""
    youth_requests.confirm_wish(db.session, current_engine(), api_actor(), business_key, args["rating"],
                                args["comment"])
    db.session.commit()
    return wish_status(db.session, business_key)


@blp.route(f"/wishes/<{KEY}:business_key>/withdraw", methods=["POST"])
@blp.arguments(WithdrawArgs)
@blp.response(200, WishStatusSchema)
@requires("wishes:write")
def withdraw_wish(args, business_key: str):
    """Withdraw my wish (whoever holds it is told)"""
    youth_requests.withdraw_wish(db.session, current_engine(), api_actor(), business_key, args["reason"])
    db.session.commit()
    return wish_status(db.session, business_key)


@blp.route("/questions", methods=["POST"])
@blp.arguments(QuestionArgs)
@blp.response(201, QuestionStatusSchema)
@requires("wishes:write")
def ask_question(args):
    """Ask a cadre who contacts me a question (unanswered in 3 days, it goes to the 英雄帖 board)"""
    instance = youth_requests.ask_question(db.session, current_engine(), api_actor(), args["cadre_id"],
                                           args["question"])
    db.session.commit()
    return _question(instance), 201, {"Location": url_for("api_wishes.get_question",
                                                          business_key=instance.business_key)}


@blp.route("/questions")
@blp.arguments(PageArgs, location="query")
@blp.response(200, QuestionPage)
@requires("wishes:read")
def list_questions(args):
    """My questions, newest first"""
    return _own_page(youth_requests.VOICE_PROCESS, args, _question)


@blp.route(f"/questions/<{KEY}:business_key>")
@blp.response(200, QuestionStatusSchema)
@requires("wishes:read")
def get_question(business_key: str):
    """Where a question is, and its answer once there is one"""
    return _question(_visible(youth_requests.VOICE_PROCESS, business_key))


@blp.route(f"/questions/<{KEY}:business_key>/rate", methods=["POST"])
@blp.arguments(RateArgs)
@blp.response(200, QuestionStatusSchema)
@requires("wishes:write")
def rate_answer(args, business_key: str):
    """Rate the answer to my question, 1-5 stars, within 7 days of it (409 otherwise)"""
    youth_requests.rate_answer(db.session, current_engine(), api_actor(), business_key, args["rating"],
                               args["comment"])
    db.session.commit()
    return _question(youth_requests.own_request(db.session, api_actor(), youth_requests.VOICE_PROCESS,
                                                business_key))
