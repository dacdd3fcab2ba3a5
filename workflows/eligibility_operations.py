"""Service operator that refuses to nominate a cadre who may not be an outstanding cadre (youth-story selection)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.errors import EngineError
from engine.services import ServiceCall

from .eligibility import nomination_refusal
from .models import Cadre, User
from .services import registry
from .spot_checks import BEIJING


class NominationRefused(EngineError):
    """A nomination names a cadre who cannot be nominated; the message names each one and why."""

    http_status = 422


@registry.register("check_nominations")
def check_nominations(call: ServiceCall, nominations: list[Any], year: Any = None) -> dict:
    """Refuse the nominations if any nominee is not a cadre or may not be nominated.

    A nominee may not be nominated who failed the assessment of ``year`` (default: the current
    year, Beijing time) or of the year before (the last year-end evaluation), or has an activity
    record of either year found false by a spot check.  Raises :class:`NominationRefused`, so the
    completion is refused and the task stays open.
    """
    year = int(year) if year else call.now.astimezone(BEIJING).year
    usernames = list(dict.fromkeys(str(n.get("cadre") if isinstance(n, dict) else n) for n in nominations or []))
    cadres = {username: cadre for username, cadre in call.session.execute(
        select(User.username, Cadre).join(Cadre, Cadre.user_id == User.id).where(User.username.in_(usernames)))}
    refusals = []
    for username in usernames:
        cadre = cadres.get(username)
        if cadre is None:
            refusals.append(f"账号 {username} 不是团干部 / {username} is not a cadre's account")
            continue
        reason = nomination_refusal(call.session, cadre, year) or nomination_refusal(call.session, cadre, year - 1)
        if reason:
            refusals.append(reason)
    if refusals:
        raise NominationRefused("推荐人选不符合条件 / nominees not eligible: " + "；".join(refusals))
    return {"year": year, "eligible": usernames}
