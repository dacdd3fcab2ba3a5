"""Bearer tokens for the JSON API: created and revoked by their owner, scoped, expiring, hashed at rest.

A token reads ``lq_<prefix>_<secret>``: the prefix (12 hex characters) is stored in clear and
indexed so a request finds its row in one lookup; the secret (32 random bytes) is never stored,
only the SHA-256 of the whole token.  A slow hash is not needed: the secret is random, not a
password.  Scopes narrow what a token may be used for; they never grant a right the person does
not hold (the role and subtree checks still decide).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.errors import EngineError, FieldError, FormInvalid, NotAllowed, NotFound
from engine.models import Base

from .models import User

# Every scope, with what it lets a token do.  Keep this list small: it is the API's contract.
SCOPES: dict[str, str] = {
    "tasks:read": "读取我的待办和任务 / read my inbox and tasks",
    "tasks:write": "认领、退回、转办、办理任务 / claim, unclaim, delegate and complete tasks",
    "instances:read": "读取流程实例、流程图状态和审计记录 / read instances, diagram state and audit trail",
    "instances:write": "发起流程、发送消息、取消流程 / start instances, send messages, cancel",
    "processes:read": "读取流程定义和BPMN / read process definitions and their BPMN",
    "processes:deploy": "部署流程定义 / deploy process definitions",
    "wishes:read": "查看我的微心愿和提问 / read my micro-wishes and questions",
    "wishes:write": "提出、确认、撤回、评价微心愿和提问 / post, confirm, withdraw and rate wishes and questions",
    "people:read": "读取本级及下级组织和人员 / read organisations and people in my subtree",
    "campaigns:read": "查看集中行动进度 / read campaign progress and dashboards",
    "campaigns:write": "发起和取消集中行动 / launch and cancel campaigns",
    "assessment:read": "查看积分、排名和通报 / read points, rankings and bulletins",
}
MAX_DAYS = 365
DEFAULT_DAYS = 90
# last_used_at is written at most this often per token, so a busy client does not write on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_TOKEN = re.compile(r"^lq_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class ApiToken(Base):
    """One bearer token of one user; only the hash of the secret is kept."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_user", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(500))  # space-separated, as in OAuth
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def scope_list(self) -> list[str]:
        """The token's scopes, in the order of :data:`SCOPES`."""
        held = set(self.scopes.split())
        return [scope for scope in SCOPES if scope in held]

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the row, and the secret shown to its owner exactly once."""

    token: ApiToken
    secret: str


class TokenRefused(EngineError):
    """No valid bearer token: missing, malformed, unknown, expired, revoked, or its account disabled."""

    http_status = 401

    def __init__(self, message: str, reason: str = "invalid_token"):
        super().__init__(message)
        self.reason = reason


class ScopeMissing(NotAllowed):
    """The token is valid but was not given the scope this call needs."""

    def __init__(self, scope: str):
        super().__init__(f"此令牌没有「{scope}」权限范围，请新建一个包含它的令牌 / this token lacks the scope "
                         f"'{scope}'; create a token that includes it")
        self.scope = scope


def _digest(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...] | str) -> list[str]:
    """Known scopes, de-duplicated; :class:`FormInvalid` naming any unknown one or an empty list."""
    wanted = scopes.split() if isinstance(scopes, str) else [s for scope in scopes for s in str(scope).split()]
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if unknown:
        raise FormInvalid([FieldError("scopes", f"未知的权限范围 {', '.join(unknown)} / unknown scope(s); one of "
                                                f"{', '.join(SCOPES)}")])
    if not wanted:
        raise FormInvalid([FieldError("scopes", "至少选择一个权限范围 / choose at least one scope")])
    return [scope for scope in SCOPES if scope in wanted]


def create_token(session: Session, user: User, name: str, scopes: list[str] | str, now: datetime,
                 days: int = DEFAULT_DAYS) -> IssuedToken:
    """Issue a token for ``user`` valid ``days`` days (1-365); the caller commits and shows the secret once."""
    name = (name or "").strip()
    errors = []
    if not name or len(name) > 100:
        errors.append(FieldError("name", "名称必填，最多100字 / a name of 1-100 characters is required"))
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        errors.append(FieldError("days", f"有效期为1到{MAX_DAYS}天 / valid for 1 to {MAX_DAYS} days"))
    try:
        granted = check_scopes(scopes)
    except FormInvalid as invalid:
        errors.extend(invalid.errors)
    if errors:
        raise FormInvalid(errors)
    if not user.active:
        raise NotAllowed(f"账号 {user.username} 已停用 / account {user.username} is disabled")
    prefix = secrets.token_hex(6)
    secret = f"lq_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(user_id=user.id, name=name, prefix=prefix, token_hash=_digest(secret), scopes=" ".join(granted),
                     created_at=now, expires_at=now + timedelta(days=days))
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def authenticate(session: Session, presented: str | None, now: datetime) -> tuple[ApiToken, User]:
    """The token and its user for a presented bearer token, or :class:`TokenRefused` saying why.

    Records when the token was last used (at most once a minute); the caller commits.
    """
    if not presented:
        raise TokenRefused("需要令牌：请在 Authorization 头中提供 Bearer 令牌 / a bearer token is required "
                           "(Authorization: Bearer lq_...)", reason="")
    match = _TOKEN.match(presented.strip())
    token = session.scalar(select(ApiToken).where(ApiToken.prefix == match.group(1))) if match else None
    if token is None or not hmac.compare_digest(token.token_hash, _digest(presented.strip())):
        raise TokenRefused("令牌无效 / the token is not valid")
    if token.revoked_at is not None:
        raise TokenRefused("令牌已撤销 / the token was revoked")
    if token.expires_at <= now:
        raise TokenRefused("令牌已过期，请新建一个 / the token expired; create a new one")
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        raise TokenRefused("令牌所属账号已停用 / the token's account is disabled")
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_RESOLUTION:
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        token.last_used_at = now
    return token, user


def require_scope(token: ApiToken, scope: str) -> None:
    """Raise :class:`ScopeMissing` unless ``token`` carries ``scope``."""
    if scope not in token.scopes.split():
        raise ScopeMissing(scope)


def user_tokens(session: Session, user_id: int, limit: int = 100, after_id: int | None = None) -> list[ApiToken]:
    """A user's tokens, newest first (revoked and expired ones included)."""
    query = select(ApiToken).where(ApiToken.user_id == user_id)
    if after_id is not None:
        query = query.where(ApiToken.id < after_id)
    return list(session.scalars(query.order_by(ApiToken.id.desc()).limit(limit)))


def revoke_token(session: Session, token_id: int, now: datetime, user_id: int | None = None) -> ApiToken:
    """Revoke a token (only one of ``user_id``'s when given); revoking twice keeps the first time."""
    token = session.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        raise NotFound(f"令牌 {token_id} 不存在 / no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now
    return token
