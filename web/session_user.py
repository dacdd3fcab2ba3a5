"""The signed-in person as Flask-Login sees them, and as the domain rules see them (an Actor)."""
from __future__ import annotations

from flask import g
from flask_login import UserMixin, current_user

from workflows.models import User
from workflows.roles import Actor, actor_of

from .extensions import db, login_manager


class SignedInUser(UserMixin):
    """Wraps a :class:`User`; the session id carries the account's session version."""

    def __init__(self, user: User):
        self.user = user

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
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return SignedInUser(user)


def current_actor() -> Actor:
    """The signed-in person's :class:`Actor` (computed once per request)."""
    if "actor" not in g:
        g.actor = actor_of(db.session, current_user.user)
    return g.actor
