"""Service operators that route campaign tasks (集中服务青年月 and the like) up the organisation tree."""
from __future__ import annotations

from engine.services import ServiceCall

from .organisations import ancestors, by_code
from .services import registry


@registry.register("nearest_leading_organ")
def nearest_leading_organ(call: ServiceCall, organisation: str | None = None) -> dict:
    """The nearest leading organ (团的领导机关, county level or above) at or above an organisation.

    A grassroots cadre's overdue campaign task goes to the county committee above; a cadre who
    works in a county, city or province committee is followed up by that committee itself.
    Defaults to the instance's organisation.
    """
    org = by_code(call.session, organisation or call.organisation_id)
    for candidate in reversed(ancestors(call.session, org)):
        if candidate.is_leading_organ:
            return {"code": candidate.code, "name": candidate.name, "kind": candidate.kind}
    return {"code": None, "name": None, "kind": None}  # a tree without a province: cannot happen in practice
