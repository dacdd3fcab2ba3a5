"""我的联系青年: a cadre's contacted young people, with their tags, mobile binding and the cadre's totals.

``/contacts/`` is the signed-in cadre's own list; ``/contacts/cadre/<id>`` shows one cadre's list,
read-only, to an organiser (or admin) of an organisation at or above the cadre's, and to the cadre.
Each line gives the youth's name (phone masked), since when and how they are in touch, the two tags a
contact needs to count for points (职业 and 行业, ``Youth.tags_complete``) and whether they bound the
mobile client; filters keep only the incomplete or the unbound.  The top shows the contact progress
against the target in force (``quotas.contact_progress``) and the cadre's points this year.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import login_required

from engine.errors import NotAllowed
from workflows import points, quotas
from workflows.models import Cadre, Organisation
from workflows.people import cadre_contacts, contact_totals

from .extensions import db
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("contacts", __name__, url_prefix="/contacts")

PAGE_SIZE = 50
MAX_PAGE = 1000  # a cadre contacts about a hundred; offsets stay small


def may_view_contacts(cadre: Cadre, organisation: Organisation) -> bool:
    """Whether the signed-in person may see ``cadre``'s contacts: the cadre, or an organiser (or admin) above."""
    actor = current_actor()
    return actor.cadre_id == cadre.id or actor.holds("organiser", organisation.path)


def _page() -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def _query(**params) -> str:
    """``?a=1&b=2`` without the empty parameters."""
    kept = {key: value for key, value in params.items() if value not in (None, "", False)}
    return "?" + urlencode(kept) if kept else "?"


@bp.get("/")
@login_required
def mine():
    """The signed-in cadre's contacted young people."""
    actor = current_actor()
    if actor.cadre_id is None:
        raise NotAllowed("只有团干部有联系青年名单 / only cadres have a list of contacted youth")
    return _contacts_page(db.session.get(Cadre, actor.cadre_id), own=True)


@bp.get("/cadre/<int:cadre_id>")
@login_required
def cadre(cadre_id: int):
    """One cadre's contacted young people, read-only, for an organiser of the cadre's organisation or above."""
    person = db.session.get(Cadre, cadre_id)
    if person is None:
        abort(404, description=f"团干部 {cadre_id} 不存在 / no cadre {cadre_id}")
    if person.id == current_actor().cadre_id:
        return redirect(url_for("contacts.mine", **request.args))
    return _contacts_page(person, own=False)


def _contacts_page(person: Cadre, own: bool):
    organisation = db.session.get(Organisation, person.organisation_id)
    if not may_view_contacts(person, organisation):
        raise NotAllowed(f"只有「{organisation.name}」及上级组织的组织者可以查看团干部「{person.name}」的联系青年 / only "
                         f"an organiser of {organisation.code} or above may see the contacts of cadre {person.code}")
    incomplete_only = request.args.get("incomplete") == "1"
    unbound_only = request.args.get("unbound") == "1"
    page = _page()
    lines, matching = cadre_contacts(db.session, person.id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                                     incomplete_only=incomplete_only, unbound_only=unbound_only)
    pages = max(1, -(-matching // PAGE_SIZE))
    filters = {"incomplete": "1" if incomplete_only else None, "unbound": "1" if unbound_only else None}
    year = points.league_year(current_engine().clock.now())
    return render_template(
        "contacts/list.html", cadre=person, organisation=organisation, own=own, lines=lines, matching=matching,
        page=page, pages=pages, incomplete_only=incomplete_only, unbound_only=unbound_only,
        previous_url=_query(page=page - 1, **filters) if page > 1 else None,
        next_url=_query(page=page + 1, **filters) if page < pages else None,
        progress=quotas.contact_progress(db.session, person), totals=contact_totals(db.session, person.id),
        score=points.cadre_score(db.session, person.id, year), year=year,
        assessment_url=url_for("assessment.cadres", code=organisation.code, scope="own"),
        points_url=url_for("points.cadre", code=person.code))


__all__ = ["bp", "may_view_contacts"]
