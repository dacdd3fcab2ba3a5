"""The education practice "一学一做" (May–September): the committee and branch a cadre guides, and the task list.

Each cadre picks one grassroots committee or general branch (基层团委 / 团总支) to guide and one
branch (团支部) inside it, then works through the task list of Annex 3 with that branch.  Every
item done is stored as a :class:`PracticeItem` (with its evidence: "data without a work process"
is forbidden); when the practice closes, the items not done are stored as missed, so the points
rule (1.5 per distinct item, never twice) and the bulletins can read one table.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.models import Base

from .models import Cadre, Organisation, User
from .points import award

# The task list (任务清单) with one branch.  The notice names "attend the organisation-life meeting"
# and "guide it to be held well" separately; they are one item here, so that the eight items are
# worth exactly the 12-point cap of the education-practice category (8 × 1.5).
PRACTICE_ITEMS: dict[str, str] = {
    "study_speeches": "学习总书记讲话",
    "organisation_life_meeting": "参加并指导开好组织生活会",
    "retake_oath": "重温入团誓词",
    "volunteer_service": "开展志愿服务",
    "online_league_day": "参与网络主题团日活动",
    "self_inspection": "指导组织自查整顿",
    "pioneer_posts": "指导创建团员先锋岗（队）",
    "themed_lecture": "讲一次主题团课",
}
GUIDED_COMMITTEE_KINDS = ("grassroots", "general_branch")
DONE, MISSED = "done", "missed"


class PracticeItem(Base):
    """One task-list item of one cadre's education practice: done (with evidence) or missed at the close."""

    __tablename__ = "practice_item"
    __table_args__ = (UniqueConstraint("instance_id", "item"),
                      Index("ix_practice_item_cadre_year", "cadre_id", "year"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(Integer)  # the education_practice instance
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"))
    year: Mapped[int] = mapped_column(Integer)
    item: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # done / missed
    held_on: Mapped[str | None] = mapped_column(String(10))  # ISO date, as entered
    place: Mapped[str | None] = mapped_column(String(200))
    participants: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(5000))
    details: Mapped[dict | None] = mapped_column(JSON)  # the item's own fields (topic, hours, …)
    evidence: Mapped[list | None] = mapped_column(JSON)
    recorded_at: Mapped[datetime]


@dataclass(frozen=True)
class Guidance:
    """The committee a cadre guides and the branch they take part in fully."""

    committee: Organisation
    branch: Organisation

    def as_data(self) -> dict:
        """The JSON-able form kept in process data."""
        return {"committee": self.committee.code, "committee_name": self.committee.name,
                "branch": self.branch.code, "branch_name": self.branch.name}


def cadre_by_username(session: Session, username: str | None) -> Cadre:
    """The cadre whose account is ``username``; ``ValueError`` if there is none."""
    cadre = None
    if username:
        cadre = session.scalar(select(Cadre).join(User, User.id == Cadre.user_id).where(User.username == username))
    if cadre is None:
        raise ValueError(f"没有账号为 {username!r} 的团干部 / no cadre with username {username!r}")
    return cadre


def choose_guidance(session: Session, cadre: Cadre, committee_code: str, branch_code: str) -> Guidance:
    """Record the committee (基层团委/团总支) and the branch inside it that ``cadre`` chose to guide."""
    committee = session.scalar(select(Organisation).where(Organisation.code == committee_code))
    if committee is None or committee.kind not in GUIDED_COMMITTEE_KINDS:
        raise ValueError(f"「{committee_code}」不是基层团委或团总支 / {committee_code!r} is not a grassroots "
                         "committee or general branch")
    branch = session.scalar(select(Organisation).where(Organisation.code == branch_code))
    if branch is None or branch.kind != "branch" or branch.parent_id != committee.id:
        raise ValueError(f"「{branch_code}」不是「{committee.name}」下属的团支部 / {branch_code!r} is not a branch "
                         f"of {committee_code!r}")
    cadre.guided_committee_id, cadre.guided_branch_id = committee.id, branch.id
    session.flush()
    return Guidance(committee, branch)


def record_item(session: Session, *, cadre: Cadre, item: str, held_on: str, place: str, participants: int,
                description: str, evidence: list, now: datetime, details: dict | None = None,
                instance_id: int | None = None) -> PracticeItem:
    """Store a done task-list item with its evidence; the same item of the same instance is stored once.

    The first time in a year a cadre does an item, it scores (一学一做: 1.5 per distinct item).
    """
    if item not in PRACTICE_ITEMS:
        raise ValueError(f"「{item}」不在“一学一做”任务清单中 / unknown item; one of {', '.join(PRACTICE_ITEMS)}")
    date.fromisoformat(held_on)  # refuses a malformed date with ValueError
    if not evidence:
        raise ValueError("请上传佐证材料 / an item needs evidence")
    if instance_id is not None:
        existing = session.scalar(select(PracticeItem).where(PracticeItem.instance_id == instance_id,
                                                             PracticeItem.item == item))
        if existing is not None:
            return existing
    row = PracticeItem(instance_id=instance_id, cadre_id=cadre.id, year=now.year, item=item, status=DONE,
                       held_on=held_on, place=place, participants=int(participants), description=description,
                       details=details or {}, evidence=list(evidence), recorded_at=now)
    session.add(row)
    session.flush()
    # 1.5 per distinct item of the task list, never twice: the key is the item, whatever the instance.
    award(session, cadre, "education_practice", f"item:{item}", now, "practice_item", str(row.id))
    return row


def close_practice(session: Session, *, cadre: Cadre, instance_id: int | None, now: datetime) -> dict:
    """Close one practice: store every item not done as missed; return the done and missed items."""
    rows = session.scalars(select(PracticeItem).where(PracticeItem.instance_id == instance_id,
                                                      PracticeItem.cadre_id == cadre.id)).all()
    status = {row.item: row.status for row in rows}
    for item in PRACTICE_ITEMS:
        if item not in status:
            session.add(PracticeItem(instance_id=instance_id, cadre_id=cadre.id, year=now.year, item=item,
                                     status=MISSED, recorded_at=now))
            status[item] = MISSED
    session.flush()
    done = [item for item in PRACTICE_ITEMS if status[item] == DONE]
    missed = [item for item in PRACTICE_ITEMS if status[item] == MISSED]
    return {"done": done, "missed": missed, "done_labels": [PRACTICE_ITEMS[i] for i in done],
            "missed_labels": [PRACTICE_ITEMS[i] for i in missed], "done_count": len(done),
            "closed_at": now.isoformat()}


def items_done(session: Session, cadre: Cadre, year: int) -> set[str]:
    """The distinct items ``cadre`` has done in ``year`` (each scores once, whatever the instance)."""
    return set(session.scalars(select(PracticeItem.item).where(PracticeItem.cadre_id == cadre.id,
                                                               PracticeItem.year == year,
                                                               PracticeItem.status == DONE)))
