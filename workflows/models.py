"""Tables of the "1+100" domain: organisations, accounts, roles, cadres, youth and their contacts.

They live on the engine's ``Base`` so one set of Alembic migrations covers everything.  The
engine refers to an organisation by its ``code`` and to a person by their ``username``.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models import Base

# Byte-wise ordering on PostgreSQL, so that a subtree is one index range (path >= p AND path < p').
PATH_TYPE = String(512).with_variant(String(512, collation="C"), "postgresql")

ORG_KINDS = ("province", "city", "enterprise", "university", "agency", "county", "grassroots", "general_branch",
             "branch")
LEADING_ORGAN_KINDS = ("province", "city", "enterprise", "university", "agency", "county")
CADRE_KINDS = ("full_time", "seconded", "part_time")
STAFF_ROLES = ("organiser", "coordinator", "inspector", "admin")


class Organisation(Base):
    """One league organisation in the tree (团省委 → 市委 … → 团支部)."""

    __tablename__ = "organisation"
    __table_args__ = (Index("ix_organisation_path", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    # Materialised path of ids, "/1/7/42/": a subtree is every path starting with this one.
    path: Mapped[str] = mapped_column(PATH_TYPE)
    depth: Mapped[int] = mapped_column(Integer)

    @property
    def is_leading_organ(self) -> bool:
        """County level and above (团的领导机关)."""
        return self.kind in LEADING_ORGAN_KINDS


class User(Base):
    """A person who signs in: staff and cadres with a password, youth with phone + one-time code."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped by "sign out everywhere": sessions carrying an older value are refused.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    # Where in-app notifications are also e-mailed (workflows/mail_delivery.py); none: in-app only.
    email: Mapped[str | None] = mapped_column(String(255))

    organisation: Mapped[Organisation | None] = relationship(lazy="joined")
    grants: Mapped[list[RoleGrant]] = relationship(back_populates="user", lazy="selectin",
                                                   cascade="all, delete-orphan")


class RoleGrant(Base):
    """A staff role held at an organisation, valid for its whole subtree."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("user_id", "role", "organisation_id"),
                      Index("ix_role_grant_role_org", "role", "organisation_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    role: Mapped[str] = mapped_column(String(32))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))

    user: Mapped[User] = relationship(back_populates="grants")
    organisation: Mapped[Organisation] = relationship(lazy="joined")


class Cadre(Base):
    """A league cadre (团干部) and the grassroots committee and branch they chose to guide."""

    __tablename__ = "cadre"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), unique=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    guided_committee_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    guided_branch_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))

    user: Mapped[User] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(foreign_keys=[organisation_id], lazy="joined")


class Youth(Base):
    """A young person (青年 / 小伙伴).  The phone number is personal data: stored normalised, shown masked."""

    __tablename__ = "youth"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    occupation: Mapped[str | None] = mapped_column(String(64))
    industry: Mapped[str | None] = mapped_column(String(64))
    bound_at: Mapped[datetime | None]

    @property
    def tags_complete(self) -> bool:
        """A contact counts only when both occupation and industry are tagged."""
        return bool(self.occupation and self.industry)


class Contact(Base):
    """A cadre directly contacts a young person ("1+100")."""

    __tablename__ = "contact"
    __table_args__ = (UniqueConstraint("cadre_id", "youth_id"), Index("ix_contact_youth", "youth_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"))
    youth_id: Mapped[int] = mapped_column(ForeignKey("youth.id"))
    since: Mapped[datetime]


class OneTimeCode(Base):
    """A sign-in code sent to a phone; only its hash is kept."""

    __tablename__ = "one_time_code"
    __table_args__ = (Index("ix_one_time_code_phone", "phone", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None]


class Notification(Base):
    """The outbox: every message to a person is written here, in the transaction that caused it."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_recipient", "recipient", "read_at"),
                      Index("ix_notification_delivery", "channel", "delivery_state", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(64))  # a username, or a masked phone for codes
    channel: Mapped[str] = mapped_column(String(16))     # in_app, sms, email
    address: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(String(4000))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    # Delivery bookkeeping (workflows/outbox_delivery.py).  delivery_state: none = not looked at yet;
    # "pending" = to be sent at next_attempt_at (while a sender holds it: when its claim lapses);
    # "sent", "failed", "skipped" are final (last_error says why).
    delivery_state: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class LoginAttempt(Base):
    """Failed sign-ins, per account and per address, for rate limiting across processes."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]


# The "five-ones" (五个一) kinds: a cadre's five activities, and a leading organ's five.
CADRE_ACTIVITY_KINDS = ("practical_thing", "league_lecture", "heart_to_heart", "volunteer_service", "culture_sports")
ORGAN_ACTIVITY_KINDS = ("open_day", "face_to_face", "collective_volunteer", "sharing_session", "self_designed")


class Activity(Base):
    """One recorded direct-contact activity, with its evidence ("data without a work process" is forbidden)."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_cadre_held", "cadre_id", "held_on"),
                      Index("ix_activity_org_held", "organisation_id", "held_on"))

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadre.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(String(32))
    held_on: Mapped[str] = mapped_column(String(10))  # ISO date, as entered
    place: Mapped[str] = mapped_column(String(200))
    youth_count: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(5000))
    evidence: Mapped[list | None] = mapped_column(JSON)
    instance_id: Mapped[int | None] = mapped_column(Integer)  # the process that recorded it
    recorded_at: Mapped[datetime]
    verified: Mapped[bool | None] = mapped_column(Boolean)
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(500))
