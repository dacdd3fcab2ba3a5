"""Signing in: passwords, one-time codes to a phone, rate limits, sign-out everywhere.

No Flask here: the web layer calls these with a session, the time and the request's address.
Failed attempts are rows in the database, so limits hold across processes and machines.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .contact_points import award_binding
from .models import LoginAttempt, Notification, OneTimeCode, User, Youth
from .people import check_password, mask_phone, normalise_phone

log = logging.getLogger(__name__)

ATTEMPT_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 30
CODE_LIFETIME = timedelta(minutes=5)
CODE_RESEND_AFTER = timedelta(seconds=60)
MAX_CODES_PER_HOUR = 5
MAX_CODE_ATTEMPTS = 5


class SignInRefused(Exception):
    """Sign-in failed; ``message`` is safe to show (it never says which part was wrong)."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class TooManyAttempts(SignInRefused):
    """Too many failures for this account, phone or address; try again later."""


def _failures(session: Session, key: str, now: datetime) -> int:
    return session.scalar(select(func.count()).select_from(LoginAttempt)
                          .where(LoginAttempt.key == key, LoginAttempt.at > now - ATTEMPT_WINDOW)) or 0


def _record_failure(session: Session, keys: list[str], now: datetime) -> None:
    for key in keys:
        session.add(LoginAttempt(key=key, at=now))
    session.flush()


def _check_limits(session: Session, keys: list[tuple[str, int]], now: datetime) -> None:
    for key, limit in keys:
        if _failures(session, key, now) >= limit:
            minutes = int(ATTEMPT_WINDOW.total_seconds() // 60)
            raise TooManyAttempts(f"尝试次数过多，请{minutes}分钟后再试 / too many attempts; try again in {minutes} "
                                  "minutes", retry_after=int(ATTEMPT_WINDOW.total_seconds()))


def sign_in_with_password(session: Session, username: str, password: str, address: str, now: datetime) -> User:
    """The user if the password is right; :class:`SignInRefused` or :class:`TooManyAttempts` otherwise.

    The caller commits: failures are recorded even when sign-in is refused.
    """
    username = (username or "").strip()
    account_key, address_key = f"user:{username.lower()}", f"addr:{address}"
    _check_limits(session, [(account_key, MAX_FAILURES_PER_ACCOUNT), (address_key, MAX_FAILURES_PER_ADDRESS)], now)
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not check_password(user, password or ""):
        _record_failure(session, [account_key, address_key], now)
        raise SignInRefused("账号或密码不正确 / wrong user name or password")
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == account_key))
    return user


@dataclass(frozen=True)
class CodeSent:
    """A code was issued; ``code`` is returned only so development can show it."""

    masked_phone: str
    code: str
    expires_at: datetime


def _code_hash(phone: str, code: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(session: Session, raw_phone: str, address: str, now: datetime, secret: str) -> CodeSent:
    """Issue a 6-digit sign-in code for a registered youth's phone and put the SMS in the outbox.

    Raises :class:`SignInRefused` for an unknown phone, :class:`TooManyAttempts` when codes are
    asked for too often.  The phone is never logged in full.
    """
    phone = normalise_phone(raw_phone)
    _check_limits(session, [(f"addr:{address}", MAX_FAILURES_PER_ADDRESS)], now)
    youth = session.scalar(select(Youth).where(Youth.phone == phone))
    if youth is None:
        _record_failure(session, [f"addr:{address}"], now)
        raise SignInRefused("该手机号未登记，请联系团干部 / this phone is not registered; ask your league cadre")
    recent = list(session.scalars(select(OneTimeCode.created_at).where(
        OneTimeCode.phone == phone, OneTimeCode.created_at > now - timedelta(hours=1))))
    if len(recent) >= MAX_CODES_PER_HOUR:
        raise TooManyAttempts("验证码请求过于频繁，请稍后再试 / too many codes requested; try again later",
                              retry_after=3600)
    if recent and max(recent) > now - CODE_RESEND_AFTER:
        wait = int((max(recent) + CODE_RESEND_AFTER - now).total_seconds()) + 1
        raise TooManyAttempts(f"请{wait}秒后再获取验证码 / wait {wait} s before asking for another code",
                              retry_after=wait)
    code = f"{secrets.randbelow(1_000_000):06d}"
    expires = now + CODE_LIFETIME
    session.add(OneTimeCode(phone=phone, code_hash=_code_hash(phone, code, secret), created_at=now,
                            expires_at=expires, attempts=0))
    session.add(Notification(recipient=f"youth-{youth.id}", channel="sms", address=phone,
                             subject="联青登录验证码", body=f"您的联青登录验证码是 {code}，5分钟内有效。",
                             created_at=now))
    session.flush()
    log.info("sign-in code issued for %s", mask_phone(phone))
    return CodeSent(mask_phone(phone), code, expires)


def sign_in_with_code(session: Session, raw_phone: str, code: str, address: str, now: datetime,
                      secret: str) -> User:
    """The youth's account if ``code`` is the latest live code for the phone (creating the account once)."""
    phone = normalise_phone(raw_phone)
    _check_limits(session, [(f"addr:{address}", MAX_FAILURES_PER_ADDRESS)], now)
    issued = session.scalar(select(OneTimeCode).where(OneTimeCode.phone == phone, OneTimeCode.used_at.is_(None))
                            .order_by(OneTimeCode.created_at.desc()).limit(1))
    refused = SignInRefused("验证码不正确或已过期 / wrong or expired code")
    if issued is None or issued.expires_at <= now or issued.attempts >= MAX_CODE_ATTEMPTS:
        _record_failure(session, [f"addr:{address}"], now)
        raise refused
    if not hmac.compare_digest(issued.code_hash, _code_hash(phone, (code or "").strip(), secret)):
        issued.attempts += 1
        _record_failure(session, [f"addr:{address}"], now)
        raise refused
    issued.used_at = now
    youth = session.scalar(select(Youth).where(Youth.phone == phone))
    if youth.user_id is None:
        user = User(username=f"youth-{youth.id}", display_name=youth.name, active=True, session_version=1,
                    created_at=now)
        session.add(user)
        session.flush()
        youth.user_id = user.id
    if youth.bound_at is None:
        youth.bound_at = now  # signing in on the mobile client binds it (绑定)
        award_binding(session, youth, now)  # the cadres contacting them score (workflows/contact_points.py)
    return session.get(User, youth.user_id)


def sign_out_everywhere(session: Session, user: User) -> None:
    """Invalidate every session of ``user`` (each carries the version it was issued with)."""
    user.session_version += 1
