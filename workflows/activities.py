"""Recorded activities and the five-ones quota (五个一): five activities, one of each kind, per period."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import CADRE_ACTIVITY_KINDS, ORGAN_ACTIVITY_KINDS, Activity, Cadre, Organisation

QUOTA = 5


@dataclass(frozen=True)
class QuotaCheck:
    """How a cadre or organ stands against the five-ones quota for one period."""

    count: int
    kinds_done: tuple[str, ...]
    kinds_missing: tuple[str, ...]

    @property
    def met(self) -> bool:
        """At least five activities, covering all five kinds."""
        return self.count >= QUOTA and not self.kinds_missing


def record_activity(session: Session, *, organisation: Organisation, kind: str, held_on: str, place: str,
                    youth_count: int, description: str, now: datetime, cadre: Cadre | None = None,
                    evidence: list | None = None, instance_id: int | None = None) -> Activity:
    """Store an activity; the kind must be one of the five of a cadre, or of an organ when no cadre is given."""
    kinds = CADRE_ACTIVITY_KINDS if cadre is not None else ORGAN_ACTIVITY_KINDS
    if kind not in kinds:
        raise ValueError(f"活动类别 {kind!r} 不在“五个一”之列 / kind must be one of {', '.join(kinds)}")
    date.fromisoformat(held_on)  # refuses a malformed date with ValueError
    activity = Activity(cadre_id=cadre.id if cadre else None, organisation_id=organisation.id, kind=kind,
                        held_on=held_on, place=place, youth_count=youth_count, description=description,
                        evidence=evidence or [], instance_id=instance_id, recorded_at=now)
    session.add(activity)
    session.flush()
    return activity


def check_quota(session: Session, start: str, end: str, cadre: Cadre | None = None,
                organisation: Organisation | None = None) -> QuotaCheck:
    """Count the valid activities of a cadre (or an organ's own) held in [start, end]; revoked ones do not count."""
    if (cadre is None) == (organisation is None):
        raise ValueError("give a cadre or an organisation")
    query = select(Activity.kind, func.count()).where(Activity.held_on >= start, Activity.held_on <= end,
                                                      Activity.revoked_at.is_(None))
    if cadre is not None:
        query, kinds = query.where(Activity.cadre_id == cadre.id), CADRE_ACTIVITY_KINDS
    else:
        query = query.where(Activity.organisation_id == organisation.id, Activity.cadre_id.is_(None))
        kinds = ORGAN_ACTIVITY_KINDS
    counts = dict(session.execute(query.group_by(Activity.kind)).all())
    done = tuple(kind for kind in kinds if counts.get(kind))
    return QuotaCheck(sum(counts.values()), done, tuple(kind for kind in kinds if kind not in done))
