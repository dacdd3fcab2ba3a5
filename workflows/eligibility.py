"""Who may be nominated as an outstanding cadre (优秀团干部): "a cadre who fails cannot be nominated".

The year-end evaluation writes one :class:`AssessmentResult` per cadre and year
(:func:`record_assessments`, in bulk).  :func:`nomination_refusal` says why a cadre cannot be
nominated in a year — a failed assessment of that year, or an activity record of that year found
false by a spot check — or ``None``.  Nominations (e.g. the youth-story selection) call it through
the ``check_nominations`` operator.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, delete, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.models import Base

from .models import Activity, Cadre
from .spot_checks import BEIJING, SpotCheck


class AssessmentResult(Base):
    """A cadre's result in one year's assessment (year-end evaluation): passed or not, and why."""

    __tablename__ = "assessment_result"
    __table_args__ = (UniqueConstraint("cadre_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"))
    year: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(500))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime]


@dataclass(frozen=True)
class AssessmentOutcome:
    """One cadre's result, as the year-end evaluation hands it over."""

    cadre_id: int
    passed: bool
    reason: str | None = None


def record_assessments(session: Session, year: int, outcomes: Iterable[AssessmentOutcome], decided_by: str | None,
                       now: datetime, chunk: int = 5000) -> int:
    """Write (or overwrite) the year's results of the given cadres in bulk; returns how many were written."""
    written = 0
    batch: list[AssessmentOutcome] = []

    def flush_batch() -> None:
        ids = [o.cadre_id for o in batch]
        session.execute(delete(AssessmentResult).where(AssessmentResult.year == year,
                                                       AssessmentResult.cadre_id.in_(ids)))
        session.execute(insert(AssessmentResult), [
            {"cadre_id": o.cadre_id, "year": year, "passed": bool(o.passed), "reason": (o.reason or "")[:500] or None,
             "decided_by": decided_by, "decided_at": now} for o in batch])

    for outcome in {o.cadre_id: o for o in outcomes}.values():  # the last word on a cadre counts
        batch.append(outcome)
        if len(batch) >= chunk:
            flush_batch()
            written, batch = written + len(batch), []
    if batch:
        flush_batch()
        written += len(batch)
    return written


def assessment_of(session: Session, cadre: Cadre, year: int) -> AssessmentResult | None:
    """A cadre's result for ``year``, if it has been decided."""
    return session.scalar(select(AssessmentResult).where(AssessmentResult.cadre_id == cadre.id,
                                                         AssessmentResult.year == year))


def _year_window(year: int) -> tuple[datetime, datetime]:
    start = datetime(year, 1, 1, tzinfo=BEIJING)
    return start, datetime(year + 1, 1, 1, tzinfo=BEIJING) - timedelta(microseconds=1)


def false_record(session: Session, cadre: Cadre, year: int) -> Activity | None:
    """The first of the cadre's activity records held or found false in ``year`` that a spot check found false."""
    start, end = _year_window(year)
    return session.scalar(select(Activity).join(SpotCheck, SpotCheck.activity_id == Activity.id)
                          .where(SpotCheck.cadre_id == cadre.id, SpotCheck.verdict == "false",
                                 or_(Activity.held_on.between(f"{year:04d}-01-01", f"{year:04d}-12-31"),
                                     SpotCheck.decided_at.between(start, end)))
                          .order_by(Activity.held_on, Activity.id).limit(1))


def nomination_refusal(session: Session, cadre: Cadre, year: int) -> str | None:
    """Why ``cadre`` cannot be nominated as an outstanding cadre in ``year``, or ``None`` when they can."""
    result = assessment_of(session, cadre, year)
    if result is not None and not result.passed:
        why = f"：{result.reason}" if result.reason else ""
        return (f"{cadre.name}（{cadre.code}）{year}年度考核不合格{why}，不能推荐为优秀团干部 / {cadre.code} failed the "
                f"{year} assessment{(': ' + result.reason) if result.reason else ''} and cannot be nominated")
    false = false_record(session, cadre, year)
    if false is not None:
        return (f"{cadre.name}（{cadre.code}）{year}年有活动记录经抽查不属实（{false.held_on}，记录 #{false.id}），"
                f"不能推荐为优秀团干部 / {cadre.code} has an activity record of {year} found false by a spot check "
                f"(#{false.id}, {false.held_on}) and cannot be nominated")
    return None
