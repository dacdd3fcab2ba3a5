"""My API tokens: list, create (no wider than the token in use), revoke.

People make their first token on the page ``/account/tokens`` (web/api/token_pages.py) or an
admin makes one with ``flask token create``; the secret is shown once and only its hash is kept.
"""
from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from engine.errors import FieldError, FormInvalid
from workflows.api_tokens import (
    DEFAULT_DAYS,
    MAX_DAYS,
    SCOPES,
    ApiToken,
    create_token,
    revoke_token,
    user_tokens,
)
from workflows.models import User

from ..extensions import db
from ..runtime import current_engine
from .auth import api_actor, api_token, requires
from .openapi import API_PREFIX, ID
from .pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("api_tokens", __name__, url_prefix=f"{API_PREFIX}/tokens", description="我的令牌 / my API tokens")
NO_STORE = {"Cache-Control": "no-store"}


class TokenSchema(ma.Schema):
    """A token (never its secret)."""

    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    prefix = ma.fields.String(required=True, metadata={"description": "The visible part: lq_<prefix>_..."})
    scopes = ma.fields.List(ma.fields.String(), required=True)
    state = ma.fields.String(required=True, metadata={"enum": ["active", "expired", "revoked"]})
    created_at = ma.fields.DateTime(required=True)
    expires_at = ma.fields.DateTime(required=True)
    last_used_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)


class CreatedTokenSchema(TokenSchema):
    """A new token with its secret, shown this once."""

    token = ma.fields.String(required=True, metadata={"description": "The bearer token; store it now, it is not "
                                                                     "shown again"})


class CreateArgs(ma.Schema):
    """A new token."""

    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 100))
    scopes = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(list(SCOPES))), required=True,
                            validate=ma.validate.Length(min=1),
                            metadata={"description": "A subset of the scopes of the token making the call"})
    days = ma.fields.Integer(load_default=DEFAULT_DAYS, validate=ma.validate.Range(1, MAX_DAYS))


TokenPage = page_schema(TokenSchema, "TokenPage")


def token_fields(token: ApiToken) -> dict:
    """What :class:`TokenSchema` shows of a token."""
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "scopes": token.scope_list,
            "state": token.state(current_engine().clock.now()), "created_at": token.created_at,
            "expires_at": token.expires_at, "last_used_at": token.last_used_at, "revoked_at": token.revoked_at}


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, TokenPage)
@requires(None)
def list_tokens(args):
    """My tokens, newest first (expired and revoked ones too)"""
    before = (decode_cursor(args["cursor"], id=int) or {}).get("id")
    rows = user_tokens(db.session, api_actor().user_id, args["limit"] + 1, before)
    return page(rows, args["limit"], lambda t: {"id": t.id}, token_fields)


@blp.route("", methods=["POST"])
@blp.arguments(CreateArgs)
@blp.response(201, CreatedTokenSchema, headers={"Cache-Control": {"schema": {"type": "string"}}})
@requires(None)
def create(args):
    """Create another token for myself, with some of this token's scopes (e.g. to rotate it)"""
    wider = [scope for scope in args["scopes"] if scope not in api_token().scope_list]
    if wider:
        raise FormInvalid([FieldError("scopes", f"不能超出当前令牌的权限范围：{', '.join(wider)} / not in the "
                                                f"calling token's scopes: {', '.join(wider)}")])
    issued = create_token(db.session, db.session.get(User, api_actor().user_id), args["name"], args["scopes"],
                          current_engine().clock.now(), args["days"])
    db.session.commit()
    return {**token_fields(issued.token), "token": issued.secret}, 201, NO_STORE


@blp.route(f"/<{ID}:token_id>", methods=["DELETE"])
@blp.response(200, TokenSchema)
@requires(None)
def revoke(token_id: int):
    """Revoke one of my tokens (this one included); it stops working at once"""
    token = revoke_token(db.session, token_id, current_engine().clock.now(), user_id=api_actor().user_id)
    db.session.commit()
    return token_fields(token)
