"""Service operator that records a youth's satisfaction rating from the youth-voice and micro-wish processes."""
from __future__ import annotations

from typing import Any

from engine.services import ServiceCall

from .satisfaction import record_rating
from .services import registry


@registry.register("record_satisfaction")
def record_satisfaction(call: ServiceCall, source: str, youth: str | None = None, rated: str | None = None,
                        stars: Any = None, comment: str | None = None, organisation: str | None = None) -> dict:
    """Store the rating ``youth`` gave ``rated`` (1–5 stars) for this instance; no rating, nothing stored."""
    row = record_rating(call.session, source=source, source_id=str(call.instance_id), youth_username=youth,
                        rated_username=rated, stars=stars, comment=comment,
                        organisation_code=organisation or call.organisation_id, now=call.now)
    return {"recorded": row is not None, "stars": row.stars if row is not None else None,
            "rated": rated if row is not None else None}
