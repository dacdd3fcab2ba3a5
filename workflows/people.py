"""People: accounts with hashed passwords, cadres, youth and their phones, contacts."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session

from .interactions import Interaction
from .models import CADRE_KINDS, Cadre, Contact, Organisation, User, Youth

_HASHER = PasswordHasher()
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class InvalidPhone(ValueError):
    """Not a mainland China mobile number."""


def normalise_phone(raw: str) -> str:
    """The 11-digit form of a mobile number ("+86 138-1234-5678" → "13812345678")."""
    digits = re.sub(r"[\s\-()（）]", "", str(raw or ""))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MOBILE.match(digits):
        raise InvalidPhone("手机号码格式不正确，应为11位手机号 / not a valid 11-digit mobile number")
    return digits


def mask_phone(phone: str) -> str:
    """How a phone number is shown in lists: 138****5678."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _HASHER.hash(password)


def check_password(user: User, password: str) -> bool:
    """Whether ``password`` is the user's (constant effort whether or not it matches)."""
    if not user.password_hash:
        return False
    try:
        return _HASHER.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


MIN_PASSWORD_LENGTH = 8


def validate_password(password: str) -> None:
    """Refuse passwords that are too short."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"密码至少{MIN_PASSWORD_LENGTH}位 / at least {MIN_PASSWORD_LENGTH} characters")


def new_user(username: str, display_name: str, now: datetime, organisation: Organisation | None = None,
             password: str | None = None) -> User:
    """A user account (add it to a session yourself)."""
    if password is not None:
        validate_password(password)
    return User(username=username, display_name=display_name, organisation_id=organisation.id if organisation else None,
                password_hash=hash_password(password) if password else None, active=True, session_version=1,
                created_at=now)


def check_cadre_kind(kind: str) -> str:
    """The kind if it is one of full_time / seconded / part_time."""
    if kind not in CADRE_KINDS:
        raise ValueError(f"团干部类型应为 专职/挂职/兼职 / kind must be one of {', '.join(CADRE_KINDS)}")
    return kind


def counts_for_points(youth: Youth) -> bool:
    """A contact counts only with complete occupation and industry tags."""
    return youth.tags_complete


def tags_complete_clause():
    """SQL condition of :attr:`Youth.tags_complete`: occupation and industry both filled."""
    return and_(Youth.occupation.is_not(None), Youth.occupation != "", Youth.industry.is_not(None),
                Youth.industry != "")


# ------------------------------------------------------------------------------ a cadre's contacts

@dataclass(frozen=True)
class ContactLine:
    """One young person a cadre contacts, as the cadre's contact list shows them (the phone masked)."""

    contact_id: int
    youth_id: int
    name: str
    phone: str
    occupation: str | None
    industry: str | None
    since: datetime
    bound_at: datetime | None
    interactions: int  # likes and comments of this youth in the cadre's circle

    @property
    def tags_complete(self) -> bool:
        """Whether both tags are filled, so that the contact counts for points."""
        return bool(self.occupation and self.industry)


@dataclass(frozen=True)
class ContactTotals:
    """How many young people a cadre contacts, how many of them have complete tags, how many bound the client."""

    contacts: int
    complete: int
    bound: int


def contact_totals(session: Session, cadre_id: int) -> ContactTotals:
    """A cadre's contacts in one count: all, with complete tags, bound to the mobile client."""
    total, complete, bound = session.execute(
        select(func.count(), func.count().filter(tags_complete_clause()),
               func.count().filter(Youth.bound_at.is_not(None)))
        .select_from(Contact).join(Youth, Youth.id == Contact.youth_id).where(Contact.cadre_id == cadre_id)).one()
    return ContactTotals(total or 0, complete or 0, bound or 0)


def cadre_contacts(session: Session, cadre_id: int, limit: int, offset: int = 0, incomplete_only: bool = False,
                   unbound_only: bool = False) -> tuple[list[ContactLine], int]:
    """One page of a cadre's contacts in the order they were made, and how many match the filters in all.

    ``incomplete_only``: only youth whose tags are not complete (they do not count yet);
    ``unbound_only``: only youth who have not bound the mobile client.
    """
    conditions = [Contact.cadre_id == cadre_id]
    if incomplete_only:
        conditions.append(not_(tags_complete_clause()))
    if unbound_only:
        conditions.append(Youth.bound_at.is_(None))
    base = select(Contact.id, Youth.id, Youth.name, Youth.phone, Youth.occupation, Youth.industry, Contact.since,
                  Youth.bound_at, User.username).join(Youth, Youth.id == Contact.youth_id) \
        .outerjoin(User, User.id == Youth.user_id).where(*conditions)
    matching = session.scalar(select(func.count()).select_from(Contact).join(Youth, Youth.id == Contact.youth_id)
                              .where(*conditions)) or 0
    rows = session.execute(base.order_by(Contact.id).limit(limit).offset(offset)).all()
    usernames = [row.username for row in rows if row.username]
    counts: dict[str, int] = {}
    if usernames:
        counts = dict(session.execute(
            select(Interaction.actor, func.count()).where(Interaction.cadre_id == cadre_id,
                                                          Interaction.actor.in_(usernames),
                                                          Interaction.removed_at.is_(None))
            .group_by(Interaction.actor)).all())
    lines = [ContactLine(contact_id=row[0], youth_id=row[1], name=row[2], phone=mask_phone(row[3]),
                         occupation=row[4] or None, industry=row[5] or None, since=row[6], bound_at=row[7],
                         interactions=counts.get(row.username, 0) if row.username else 0) for row in rows]
    return lines, matching


__all__ = ["normalise_phone", "mask_phone", "hash_password", "check_password", "new_user", "check_cadre_kind",
           "InvalidPhone", "Cadre", "Contact", "Youth", "counts_for_points", "validate_password",
           "tags_complete_clause", "ContactLine", "ContactTotals", "contact_totals", "cadre_contacts"]
