"""Recorded activities and the five-ones quota (五个一): five activities, one of each kind, per period."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .evidence import attach_evidence, require_evidence
from .models import CADRE_ACTIVITY_KINDS, ORGAN_ACTIVITY_KINDS, Activity, Cadre, Organisation
from .points import award, revoke_source

QUOTA = 5  # the notice's default; workflows/quotas.py holds each organisation's own


@dataclass(frozen=True)
class QuotaCheck:
    """How a cadre or organ stands against the five-ones quota for one period."""

    count: int
    kinds_done: tuple[str, ...]
    kinds_missing: tuple[str, ...]
    quota: int = QUOTA

    @property
    def met(self) -> bool:
        """At least ``quota`` activities, of as many different kinds (all five with the default quota of five)."""
        kinds = len(self.kinds_done) + len(self.kinds_missing)
        return self.count >= self.quota and len(self.kinds_done) >= min(self.quota, kinds)


def record_activity(session: Session, *, organisation: Organisation, kind: str, held_on: str, place: str,
                    youth_count: int, description: str, now: datetime, cadre: Cadre | None = None,
                    evidence: list | None = None, instance_id: int | None = None) -> Activity:
    """Store an activity; the kind must be one of the five of a cadre, or of an organ when no cadre is given.

    A cadre's record scores (活动开展: 1, part-time 1.5, per record, in the year it is recorded).
    """
    kinds = CADRE_ACTIVITY_KINDS if cadre is not None else ORGAN_ACTIVITY_KINDS
    if kind not in kinds:
        raise ValueError(f"活动类别 {kind!r} 不在“五个一”之列 / kind must be one of {', '.join(kinds)}")
    date.fromisoformat(held_on)  # refuses a malformed date with ValueError
    require_evidence(description, youth_count, evidence)  # "data without a work process" is forbidden
    activity = Activity(cadre_id=cadre.id if cadre else None, organisation_id=organisation.id, kind=kind,
                        held_on=held_on, place=place, youth_count=youth_count, description=description,
                        evidence=evidence or [], instance_id=instance_id, recorded_at=now)
    session.add(activity)
    session.flush()
    attach_evidence(session, activity, evidence)
    if cadre is not None:
        award(session, cadre, "activities", f"activity:{activity.id}", now, "activity", str(activity.id))
    return activity


def revoke_activity(session: Session, activity: Activity, reason: str, now: datetime) -> int:
    """Revoke a record (e.g. found false): it no longer counts for the quota and its points are removed."""
    if activity.revoked_at is None:
        activity.revoked_at, activity.revoked_reason = now, (reason or "")[:500]
    session.flush()
    return revoke_source(session, "activity", str(activity.id), reason, now)


def check_quota(session: Session, start: str, end: str, cadre: Cadre | None = None,
                organisation: Organisation | None = None, quota: int = QUOTA) -> QuotaCheck:
    """Count the valid activities of a cadre (or an organ's own) held in [start, end]; revoked ones do not count.

    ``quota`` is the number required (``workflows.quotas.effective_quota`` gives an organisation's).
    """
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
    return QuotaCheck(sum(counts.values()), done, tuple(kind for kind in kinds if kind not in done), quota)
