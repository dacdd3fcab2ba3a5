"""Service operators about the organisation tree, for routing tasks up and down it from BPMN."""
from __future__ import annotations

from engine.services import ServiceCall

from .models import Organisation
from .organisations import ancestors, by_code
from .services import registry


def _org(call: ServiceCall, code: str | None) -> Organisation:
    return by_code(call.session, code or call.organisation_id)


@registry.register("parent_organisation")
def parent_organisation(call: ServiceCall, organisation: str | None = None) -> dict:
    """The organisation one level up (``code`` is None at the province): where escalations go."""
    org = _org(call, organisation)
    chain = ancestors(call.session, org)
    parent = chain[-2] if len(chain) > 1 else None
    return {"code": parent.code if parent else None, "name": parent.name if parent else None,
            "kind": parent.kind if parent else None}


@registry.register("organisation_at_level")
def organisation_at_level(call: ServiceCall, kind: str, organisation: str | None = None) -> dict:
    """The nearest organisation of ``kind`` (e.g. "county", "city", "province") at or above one."""
    for candidate in reversed(ancestors(call.session, _org(call, organisation))):
        if candidate.kind == kind or (kind == "city" and candidate.kind in ("enterprise", "university", "agency")):
            return {"code": candidate.code, "name": candidate.name, "kind": candidate.kind}
    return {"code": None, "name": None, "kind": None}
