"""People: accounts with hashed passwords, cadres, youth and their phones, contacts."""
from __future__ import annotations

import re
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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


__all__ = ["normalise_phone", "mask_phone", "hash_password", "check_password", "new_user", "check_cadre_kind",
           "InvalidPhone", "Cadre", "Contact", "Youth", "counts_for_points", "validate_password"]
