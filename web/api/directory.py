"""Who I am, and the organisations and people I may read: my own subtree(s) only.

A staff role covers its organisation's subtree (``Actor.oversees``); a cadre or youth without a
staff role sees their own organisation and those above it, and a cadre their own contacts.
"""
from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import func, or_, select

from engine.errors import NotAllowed, NotFound
from workflows.models import Cadre, Contact, Organisation, Youth
from workflows.organisations import ancestor_ids, by_code, in_subtree, is_within
from workflows.people import mask_phone
from workflows.roles import Actor

from ..extensions import db
from .auth import api_actor, api_token, requires
from .openapi import API_PREFIX, ID
from .pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("api_directory", __name__, url_prefix=API_PREFIX,
                description="我和我的组织 / me, and the organisations and people of my subtree")

CODE = "string(maxlength=64)"


class GrantSchema(ma.Schema):
    """A staff role held at an organisation (valid for its subtree)."""

    role = ma.fields.String(required=True)
    organisation = ma.fields.String(required=True)


class TokenInfoSchema(ma.Schema):
    """The token of this call."""

    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    scopes = ma.fields.List(ma.fields.String(), required=True, attribute="scope_list")
    expires_at = ma.fields.DateTime(required=True)


class MeSchema(ma.Schema):
    """The person behind the token."""

    username = ma.fields.String(required=True)
    display_name = ma.fields.String(required=True)
    organisation = ma.fields.String(allow_none=True, attribute="organisation_code")
    roles = ma.fields.List(ma.fields.String(), required=True)
    grants = ma.fields.List(ma.fields.Nested(GrantSchema), required=True)
    cadre_id = ma.fields.Integer(allow_none=True)
    youth_id = ma.fields.Integer(allow_none=True)
    token = ma.fields.Nested(TokenInfoSchema, required=True)


class OrganisationSchema(ma.Schema):
    """One organisation of the league tree."""

    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    depth = ma.fields.Integer(required=True)
    parent = ma.fields.String(allow_none=True, metadata={"description": "Code of the parent organisation"})


class CadreSchema(ma.Schema):
    """A league cadre."""

    id = ma.fields.Integer(required=True)
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"enum": ["full_time", "seconded", "part_time"]})
    username = ma.fields.Function(lambda c: c.user.username, required=True)
    organisation = ma.fields.Function(lambda c: c.organisation.code, required=True)
    organisation_name = ma.fields.Function(lambda c: c.organisation.name, required=True)


class CadreDetailSchema(CadreSchema):
    """A cadre and how many young people they contact."""

    contacts = ma.fields.Integer(required=True)


class ContactSchema(ma.Schema):
    """A young person a cadre contacts (the phone masked)."""

    youth_id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    phone = ma.fields.String(required=True, metadata={"description": "Masked: 138****5678"})
    occupation = ma.fields.String(allow_none=True)
    industry = ma.fields.String(allow_none=True)
    tags_complete = ma.fields.Boolean(required=True)
    bound = ma.fields.Boolean(required=True, metadata={"description": "Signed in on the mobile client"})
    since = ma.fields.DateTime(required=True)


OrganisationPage = page_schema(OrganisationSchema, "OrganisationPage")
CadrePage = page_schema(CadreSchema, "CadrePage")
ContactPage = page_schema(ContactSchema, "ContactPage")


class OrganisationArgs(PageArgs):
    """Which organisations."""

    root = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 64),
                            metadata={"description": "Only this organisation's subtree (one I oversee)"})
    kind = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 32),
                            metadata={"description": "Only organisations of this kind (e.g. county)"})


class CadreArgs(PageArgs):
    """Whose cadres."""

    organisation = ma.fields.String(required=True, validate=ma.validate.Length(1, 64),
                                    metadata={"description": "Cadres of this organisation's subtree (one I oversee)"})


def _may_see_organisation(actor: Actor, org: Organisation) -> bool:
    return actor.oversees(org.path) or (actor.organisation_path is not None
                                        and is_within(actor.organisation_path, org.path))


def _overseen(code: str) -> Organisation:
    org = by_code(db.session, code)
    if not api_actor().oversees(org.path):
        raise NotAllowed(f"「{org.name}」不在你管理的范围内 / {code} is outside the organisations you oversee")
    return org


def _organisation_fields(org: Organisation, parents: dict[int, str]) -> dict:
    return {"code": org.code, "name": org.name, "kind": org.kind, "depth": org.depth,
            "parent": parents.get(org.parent_id) if org.parent_id else None}


def _with_parent_codes(rows: list[Organisation]) -> list[dict]:
    ids = {org.parent_id for org in rows if org.parent_id}
    parents = dict(db.session.execute(select(Organisation.id, Organisation.code).where(Organisation.id.in_(ids))).all()) \
        if ids else {}
    return [_organisation_fields(org, parents) for org in rows]


@blp.route("/me")
@blp.response(200, MeSchema)
@requires(None)
def me():
    """Who I am: my organisation, roles, and this token's scopes"""
    actor = api_actor()
    return {"username": actor.username, "display_name": actor.display_name,
            "organisation_code": actor.organisation_code, "roles": sorted(actor.roles),
            "grants": [{"role": role, "organisation": code} for role, code, _path in actor.grants],
            "cadre_id": actor.cadre_id, "youth_id": actor.youth_id, "token": api_token()}


@blp.route("/organisations")
@blp.arguments(OrganisationArgs, location="query")
@blp.response(200, OrganisationPage)
@requires("people:read")
def list_organisations(args):
    """Organisations I may read, in tree order

    With `root`: that subtree (I must oversee it).  Without: every subtree my roles cover, or, with
    no staff role, my own organisation and those above it.
    """
    actor = api_actor()
    query = select(Organisation)
    if args["root"]:
        query = query.where(in_subtree(Organisation.path, _overseen(args["root"]).path))
    elif actor.grants:
        query = query.where(or_(*[in_subtree(Organisation.path, path) for _r, _c, path in actor.grants]))
    elif actor.organisation_path:
        query = query.where(Organisation.id.in_(ancestor_ids(actor.organisation_path)))
    else:
        return {"items": [], "next_cursor": None}
    if args["kind"]:
        query = query.where(Organisation.kind == args["kind"])
    after = decode_cursor(args["cursor"], path=str)
    if after:
        query = query.where(Organisation.path > after["path"])
    rows = list(db.session.scalars(query.order_by(Organisation.path).limit(args["limit"] + 1)))
    result = page(rows, args["limit"], lambda o: {"path": o.path})
    result["items"] = _with_parent_codes(result["items"])
    return result


@blp.route(f"/organisations/<{CODE}:code>")
@blp.response(200, OrganisationSchema)
@requires("people:read")
def get_organisation(code: str):
    """One organisation (in a subtree I oversee, or mine or above mine)"""
    org = by_code(db.session, code)
    if not _may_see_organisation(api_actor(), org):
        raise NotAllowed(f"你无权查看组织 {code} / you may not read organisation {code}")
    return _with_parent_codes([org])[0]


@blp.route("/cadres")
@blp.arguments(CadreArgs, location="query")
@blp.response(200, CadrePage)
@requires("people:read")
def list_cadres(args):
    """The cadres of an organisation's subtree, by id (I must oversee it)"""
    root = _overseen(args["organisation"])
    after = (decode_cursor(args["cursor"], id=int) or {"id": 0})["id"]
    rows = list(db.session.scalars(select(Cadre).join(Organisation, Cadre.organisation_id == Organisation.id)
                                   .where(in_subtree(Organisation.path, root.path), Cadre.id > after)
                                   .order_by(Cadre.id).limit(args["limit"] + 1)))
    return page(rows, args["limit"], lambda c: {"id": c.id})


def _visible_cadre(cadre_id: int) -> Cadre:
    cadre = db.session.get(Cadre, cadre_id)
    if cadre is None:
        raise NotFound(f"团干部 {cadre_id} 不存在 / no cadre {cadre_id}")
    actor = api_actor()
    if actor.cadre_id != cadre.id and not actor.oversees(cadre.organisation.path):
        raise NotAllowed(f"你无权查看团干部 {cadre_id} / you may not read cadre {cadre_id}")
    return cadre


@blp.route(f"/cadres/<{ID}:cadre_id>")
@blp.response(200, CadreDetailSchema)
@requires("people:read")
def get_cadre(cadre_id: int):
    """A cadre (myself, or one in a subtree I oversee) and how many young people they contact"""
    cadre = _visible_cadre(cadre_id)
    cadre.contacts = db.session.scalar(select(func.count()).select_from(Contact).where(Contact.cadre_id == cadre_id))
    return cadre


@blp.route(f"/cadres/<{ID}:cadre_id>/youth")
@blp.arguments(PageArgs, location="query")
@blp.response(200, ContactPage)
@requires("people:read")
def cadre_youth(args, cadre_id: int):
    """The young people a cadre contacts (phones masked)"""
    _visible_cadre(cadre_id)
    after = (decode_cursor(args["cursor"], id=int) or {"id": 0})["id"]
    rows = db.session.execute(select(Contact, Youth).join(Youth, Contact.youth_id == Youth.id)
                              .where(Contact.cadre_id == cadre_id, Contact.id > after)
                              .order_by(Contact.id).limit(args["limit"] + 1)).all()
    return page(rows, args["limit"], lambda row: {"id": row[0].id}, lambda row: {
        "youth_id": row[1].id, "name": row[1].name, "phone": mask_phone(row[1].phone),
        "occupation": row[1].occupation, "industry": row[1].industry, "tags_complete": row[1].tags_complete,
        "bound": row[1].bound_at is not None, "since": row[0].since})
