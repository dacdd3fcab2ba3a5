"""The five-ones quota page (“五个一”指标) of an organisation: its values, where they come from, and compliance.

Anyone who may see the organisation's assessment (``web.assessment.may_see``) sees the page: the
values in force, which organisation set each (or the notice), and the compliance of the subtree's
cadres and leading organs in the current period, paginated, with a link down to each child's page.
Only an organiser of the organisation or above may change the values; a value above the one in
force higher up (不能层层加码) is refused beside its field and nothing is written
(``workflows.quotas.set_quota``).
"""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from engine.errors import NotAllowed
from workflows import quotas, rankings
from workflows.models import Cadre, Organisation
from workflows.organisations import KIND_NAMES_ZH, ancestors
from workflows.roster import CADRE_KIND_NAMES_ZH

from .assessment import may_see
from .extensions import db
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("quotas", __name__, url_prefix="/assessment/quotas")

PAGE_SIZE = 50
MAX_PAGE = 2000


def _visible(code: str) -> Organisation:
    org = db.session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        abort(404)
    if not may_see(current_actor(), org):
        raise NotAllowed(f"你无权查看「{org.name}」的“五个一”指标 / you may not see the quotas of {code}")
    return org


def _may_set(org: Organisation) -> bool:
    return current_actor().holds("organiser", org.path)


def _page(name: str) -> int:
    return min(max(request.args.get(name, 1, type=int) or 1, 1), MAX_PAGE)


def _source_names(codes) -> dict[str, str]:
    wanted = {code for code in codes if code}
    if not wanted:
        return {}
    rows = db.session.execute(select(Organisation.code, Organisation.name).where(Organisation.code.in_(wanted)))
    return dict(rows.all())


def _parse(form) -> tuple[dict[str, int | None], dict[str, str], dict[str, str]]:
    """The submitted values (blank: inherit), what was typed, and the fields that are not whole numbers."""
    values, typed, errors = {}, {}, {}
    for name, field in quotas.QUOTA_FIELDS.items():
        raw = (form.get(name) or "").strip()
        typed[name] = raw
        if not raw:
            values[name] = None
        elif raw.isascii() and raw.isdigit():
            values[name] = int(raw)
        else:
            errors[name] = _("请填写1到%(most)s之间的整数，或留空沿用上级的指标。", most=quotas.MAX_QUOTA)
    return values, typed, errors


def _render(org: Organisation, typed: dict[str, str] | None = None, errors: dict[str, str] | None = None,
            status: int = 200):
    day = rankings.local_today(current_engine().clock.now())
    in_force = quotas.effective_quota(db.session, org)
    above = quotas.quota_above(db.session, org)
    own = quotas.own_quota(db.session, org)
    sources = _source_names([*in_force.set_by.values(), *above.set_by.values()])
    compliance = quotas.subtree_compliance(db.session, org, day)

    cadre_page, organ_page = _page("page"), _page("organ_page")
    cadre_rows = compliance.cadres[(cadre_page - 1) * PAGE_SIZE:cadre_page * PAGE_SIZE]
    organ_rows = compliance.organs[(organ_page - 1) * PAGE_SIZE:organ_page * PAGE_SIZE]
    cadres = {row.id: row for row in db.session.execute(
        select(Cadre.id, Cadre.code, Cadre.name, Cadre.kind, Organisation.name.label("organisation_name"))
        .join(Organisation, Organisation.id == Cadre.organisation_id)
        .where(Cadre.id.in_([cadre_id for cadre_id, _c in cadre_rows])))}
    organ_ids = [org_id for org_id, _c in organ_rows] + list(compliance.children)
    orgs = {o.id: o for o in db.session.scalars(select(Organisation).where(Organisation.id.in_(organ_ids)))}
    children = sorted(((orgs[child_id], summary) for child_id, summary in compliance.children.items()
                       if child_id in orgs), key=lambda pair: pair[0].path)
    actor = current_actor()
    return render_template(
        "assessment/quotas.html", org=org, day=day, fields=quotas.QUOTA_FIELDS, in_force=in_force, above=above,
        own=own, sources=sources, typed=typed if typed is not None else {k: v or "" for k, v in own.items()},
        errors=errors or {}, may_set=_may_set(org), compliance=compliance, cadre_rows=cadre_rows, cadres=cadres,
        organ_rows=organ_rows, orgs=orgs, children=children, cadre_page=cadre_page, organ_page=organ_page,
        cadre_pages=max(1, -(-len(compliance.cadres) // PAGE_SIZE)),
        organ_pages=max(1, -(-len(compliance.organs) // PAGE_SIZE)),
        crumbs=[o for o in ancestors(db.session, org) if may_see(actor, o)], kind_names=KIND_NAMES_ZH,
        cadre_kind_names=CADRE_KIND_NAMES_ZH,
        two_months=quotas.two_month_period(day), quarter=quotas.quarter(day),
        last_month=f"{(day.replace(day=1) - timedelta(days=1)):%Y-%m}"), status


@bp.get("/<code>")
@login_required
def page(code: str):
    """The quotas in force at an organisation, where they come from, and the subtree's compliance now."""
    return _render(_visible(code))


@bp.post("/<code>")
@login_required
def save(code: str):
    """Set the organisation's own values (an organiser of it or above); refused values stay beside their field."""
    org = _visible(code)
    actor = current_actor()
    if not _may_set(org):
        raise NotAllowed(f"只有「{org.name}」及上级的组织者可以设置“五个一”指标 / only an organiser of {code} or above "
                         "may set its quotas")
    values, typed, errors = _parse(request.form)
    checked = {name: value for name, value in values.items() if name not in errors}
    errors.update({name: str(problem) for name, problem in quotas.quota_problems(db.session, org, checked).items()})
    if errors:
        db.session.rollback()
        return _render(org, typed, errors, 400)
    quotas.set_quota(db.session, org, values, current_engine().clock.now(), actor.username)
    db.session.commit()
    flash(_("已保存「%(org)s」的“五个一”指标。", org=org.name))
    return redirect(url_for("quotas.page", code=code))


__all__ = ["bp"]
