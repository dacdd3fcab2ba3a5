"""Who is calling: the bearer token of the request, its scope, and the person behind it.

Every API view declares its scope with :func:`requires`; :func:`authenticate_request` runs before
the view (and before its arguments are parsed), so an unauthenticated call is a 401 whatever else
is wrong with it.  The person becomes the request's :class:`Actor` in ``g.actor``, the same place
``web.session_user.current_actor`` keeps the signed-in person of a page, so the rights are
decided by the same functions.  A session cookie is never consulted: a call without a token is a
401, so the API cannot be used to get round the pages' CSRF protection.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

from flask import current_app, g, request

from workflows.api_tokens import SCOPES, ApiToken, authenticate, require_scope
from workflows.roles import Actor, actor_of

from ..extensions import db
from ..runtime import current_engine

PUBLIC = "public"


def requires(scope: str | None) -> Callable:
    """Declare the scope a view needs (``None``: any valid token); documented in the OpenAPI description."""
    if scope not in (None, PUBLIC) and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorate(view: Callable) -> Callable:
        view._api_scope = scope or ""
        apidoc = view.__dict__.setdefault("_apidoc", {})
        manual = apidoc.setdefault("manual_doc", {})
        if scope == PUBLIC:
            manual["security"] = []
            return view
        note = f"\n\nScope: `{scope}`." if scope else "\n\nAny valid token."
        view.__doc__ = inspect.cleandoc(view.__doc__ or "") + note
        manual["security"] = [{"bearerAuth": []}]
        manual["responses"] = {401: "UNAUTHORIZED", 403: "FORBIDDEN"}
        if scope:
            manual["x-scope"] = scope
        return view
    return decorate


def authenticate_request() -> None:
    """Authenticate the request's bearer token and check the view's scope (a ``before_request`` hook)."""
    view = current_app.view_functions.get(request.endpoint or "")
    scope = getattr(view, "_api_scope", None)
    if scope == PUBLIC:
        return
    header = request.headers.get("Authorization", "")
    presented = header[7:].strip() if header[:7].lower() == "bearer " else None
    now = current_engine().clock.now()
    token, user = authenticate(db.session, presented, now)
    if token.last_used_at == now:
        db.session.commit()  # keep last_used_at even if the call fails (written at most once a minute)
    if scope is None:  # a view that forgot to declare its scope is closed, not open
        raise RuntimeError(f"API view {request.endpoint} declares no scope")
    if scope:
        require_scope(token, scope)
    g.api_token = token
    g.actor = actor_of(db.session, user)


def api_actor() -> Actor:
    """The person behind the request's token."""
    return g.actor


def api_token() -> ApiToken:
    """The request's token."""
    return g.api_token
