"""The signed-in person as Flask-Login sees them, and as the domain rules see them (an Actor)."""
from __future__ import annotations

from flask import g, has_request_context
from flask_login import UserMixin, current_user
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event

from workflows.models import User
from workflows.roles import Actor, actor_of, remember_actor, user_with_person_ids

from .extensions import db, login_manager


class SignedInUser(UserMixin):
    """Wraps a :class:`User`; the session id carries the account's session version.

    ``person_ids`` (cadre id, youth id) come with the user when the user loader read them.
    """

    def __init__(self, user: User, person_ids: tuple[int | None, int | None] | None = None):
        self.user = user
        self.person_ids = person_ids

    def get_id(self) -> str:
        """``"<user id>:<session version>"``: bumping the version signs every session out."""
        return f"{self.user.id}:{self.user.session_version}"

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)


@login_manager.user_loader
def _load_user(session_id: str):
    try:
        user_id, version = (int(part) for part in session_id.split(":"))
    except ValueError:
        return None
    loaded = user_with_person_ids(db.session, user_id)
    if loaded is None:
        return None
    user, person_ids = loaded
    if not user.active or user.session_version != version:
        return None
    return SignedInUser(user, person_ids)


def current_actor() -> Actor:
    """The signed-in person's :class:`Actor`, built once per request.

    It is also handed to the engine's task policy (:func:`workflows.roles.remember_actor`), which
    would otherwise read the person's roles again for each check.
    """
    if "actor" not in g:
        g.actor = actor_of(db.session, current_user.user, current_user.person_ids)
        remember_actor(db.session, g.actor)
    return g.actor


@event.listens_for(FlaskSession, "after_begin")
def _hand_over_actor(session, _transaction, _connection) -> None:
    # The task policy forgets actors when a transaction ends; a request that commits part-way (an
    # evidence upload does) hands its person over again to the next transaction.  g.actor lives as
    # long as the request (and is also set by the API's token sign-in), so nothing outlives it.
    if has_request_context() and "actor" in g:
        remember_actor(session, g.actor)
