"""Likes, comments (点赞、留言) and article shares (精彩文章分享) on the mobile client, and their points.

Annex 2 scores "each like or comment" (0.5, capped at 8, within the 18 of 互动情况) and "each article
shared" (0.5, capped at 5).  What counts as one fact:

- a **like** is one person liking one thing once: liking the same thing again adds nothing;
- a **comment** is each comment written (several comments on one thing each count);
- an **article share** is one article shared by one cadre once: sharing it again adds nothing.

The cadre credited is the cadre in whose circle the interaction happens (``cadre``): the cadre
who liked or commented, or whose post a contacted youth liked or commented on (``by`` names who
did it).  The web layer decides which; this module records and awards.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.models import Base

from .models import Cadre
from .points import award, revoke_source

INTERACTION_KINDS = ("like", "comment")


class Interaction(Base):
    """One like or comment in a cadre's circle (小伙伴和团干部间的专属朋友圈)."""

    __tablename__ = "interaction"
    __table_args__ = (Index("ix_interaction_cadre_at", "cadre_id", "created_at"),
                      Index("ix_interaction_target", "target", "actor", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"))
    actor: Mapped[str] = mapped_column(String(64))      # username of who liked or commented
    target: Mapped[str] = mapped_column(String(128))    # what was liked or commented on, e.g. "article:12"
    body: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class ArticleShare(Base):
    """A cadre shared an article (文化产品) with their youth."""

    __tablename__ = "article_share"
    __table_args__ = (UniqueConstraint("cadre_id", "article"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"))
    article: Mapped[str] = mapped_column(String(255))   # the article's address or catalogue id
    title: Mapped[str] = mapped_column(String(200))
    shared_at: Mapped[datetime]


def _check_target(target: str) -> str:
    target = (target or "").strip()
    if not target or len(target) > 128:
        raise ValueError("请指明点赞或留言的对象（不超过128个字符）/ name what is liked or commented on (≤ 128 characters)")
    return target


def record_like(session: Session, *, cadre: Cadre, target: str, by: str, now: datetime) -> Interaction | None:
    """Record that ``by`` liked ``target`` in ``cadre``'s circle and award it; ``None`` if already liked."""
    target = _check_target(target)
    existing = session.scalar(select(Interaction.id).where(Interaction.target == target, Interaction.actor == by,
                                                           Interaction.kind == "like",
                                                           Interaction.cadre_id == cadre.id,
                                                           Interaction.removed_at.is_(None)).limit(1))
    if existing is not None:
        return None
    like = Interaction(kind="like", cadre_id=cadre.id, actor=by, target=target, created_at=now)
    session.add(like)
    session.flush()
    award(session, cadre, "likes_comments", f"like:{by}:{target}", now, "interaction", str(like.id), variant="like")
    return like


def record_comment(session: Session, *, cadre: Cadre, target: str, by: str, body: str, now: datetime) -> Interaction:
    """Record a comment (留言) by ``by`` on ``target`` in ``cadre``'s circle and award it (each comment counts)."""
    target, body = _check_target(target), (body or "").strip()
    if not body:
        raise ValueError("留言不能为空 / a comment needs some text")
    comment = Interaction(kind="comment", cadre_id=cadre.id, actor=by, target=target, body=body[:2000],
                          created_at=now)
    session.add(comment)
    session.flush()
    award(session, cadre, "likes_comments", f"comment:{comment.id}", now, "interaction", str(comment.id),
          variant="comment")
    return comment


def remove_interaction(session: Session, interaction: Interaction, now: datetime, reason: str = "removed") -> int:
    """Take back a like or remove a comment: its points are revoked (a like given again does not score again)."""
    interaction.removed_at = now
    return revoke_source(session, "interaction", str(interaction.id), reason, now)


def share_article(session: Session, *, cadre: Cadre, article: str, title: str, now: datetime) -> ArticleShare | None:
    """Record that ``cadre`` shared an article and award it; ``None`` if they shared this article before."""
    article, title = (article or "").strip(), (title or "").strip()
    if not article or len(article) > 255 or not title:
        raise ValueError("请填写文章地址（不超过255个字符）和标题 / an article needs its address (≤ 255 characters) "
                         "and a title")
    if session.scalar(select(ArticleShare.id).where(ArticleShare.cadre_id == cadre.id,
                                                    ArticleShare.article == article)) is not None:
        return None
    share = ArticleShare(cadre_id=cadre.id, article=article, title=title[:200], shared_at=now)
    session.add(share)
    session.flush()
    award(session, cadre, "article_sharing", f"article:{share.id}", now, "article", str(share.id))
    return share
