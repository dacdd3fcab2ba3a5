"""Service operators that record activities and check the five-ones quota from BPMN."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import lazyload

from engine.services import ServiceCall

from .activities import check_quota, record_activity
from .models import Cadre
from .organisations import by_code
from .quotas import effective_quota
from .services import registry


def _cadre(call: ServiceCall, username: str | None) -> Cadre | None:
    if not username:
        return None
    from .models import User
    # Only the cadre's own columns are used (id, kind): its user (with that user's organisation and
    # roles) and organisation would otherwise be loaded eagerly, a fifth of a completion's CPU.
    return call.session.scalar(select(Cadre).join(User, User.id == Cadre.user_id).where(User.username == username)
                               .options(lazyload(Cadre.user), lazyload(Cadre.organisation)))


@registry.register("record_activity")
def record_activity_operation(call: ServiceCall, kind: str, date: str, place: str, youth_count: int,
                              description: str, cadre: str | None = None, organisation: str | None = None,
                              evidence: list | None = None) -> dict:
    """Store an activity recorded by a process (a cadre's, or an organ's own when no cadre is named)."""
    org = by_code(call.session, organisation or call.organisation_id)
    activity = record_activity(call.session, organisation=org, kind=kind, held_on=date, place=place,
                               youth_count=int(youth_count), description=description, now=call.now,
                               cadre=_cadre(call, cadre), evidence=evidence, instance_id=call.instance_id)
    return {"activity_id": activity.id}


@registry.register("check_five_ones")
def check_five_ones(call: ServiceCall, period_start: str, period_end: str, cadre: str | None = None,
                    organisation: str | None = None) -> dict:
    """How a cadre (or, without one, the organisation itself) stands against the quota in a period.

    The quota is the one in force at the cadre's (or the organ's) organisation (workflows/quotas.py).
    """
    cadre_row = _cadre(call, cadre)
    org = None if cadre_row is not None else by_code(call.session, organisation or call.organisation_id)
    if cadre_row is not None:
        quota = effective_quota(call.session, cadre_row.organisation).activities_for(cadre_row.kind)
    else:
        quota = effective_quota(call.session, org).organ_activities
    result = check_quota(call.session, period_start, period_end, cadre=cadre_row, organisation=org, quota=quota)
    return {"count": result.count, "kinds_done": list(result.kinds_done),
            "kinds_missing": list(result.kinds_missing), "met": result.met}
