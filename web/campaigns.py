"""Pages of the campaigns (全团集中活动): list, launch (with a count before confirming), progress, dashboard, exports.

Thin: parse the request, call :mod:`workflows.campaigns` and friends, answer.  Every page needs a
signed-in person, and each one checks their rights on the campaign and organisation it shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import (Blueprint, Flask, Response, current_app, flash, redirect, render_template, request, send_file,
                   stream_with_context, url_for)
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import FieldError, FormInvalid, NotAllowed
from workflows.campaign_dashboard import (PEOPLE_FILTERS, PAGE_SIZE, all_people, campaign_xlsx,
                                          organisation_breakdown, organisations_csv, parse_position, people,
                                          people_csv, target_count)
from workflows.campaign_exports import (EXPORT_JOB, XLSX_TYPE, ExportSettings, export_for, export_settings,
                                        open_export)
from workflows.campaign_exports import request_export as start_export
from workflows.campaign_launch import (cancel_campaign, count_targets, launch_campaign, launch_progress,
                                       resume_campaign, running_instances)
from workflows.campaign_processes import CHINA, PROCESSES, TARGET_KIND_NAMES, parse_moment
from workflows.campaigns import (CANCELLED, LAUNCHING_ROLE, STATUS_NAMES, Campaign, campaign_by_id,
                                 create_campaign, home_view, launchable_roots, require_view, visible_campaigns)
from workflows.organisations import ancestors, by_code

from .extensions import db
from .i18n import local_time, term
from .runtime import current_engine, current_jobs
from .session_user import current_actor

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

LIST_PAGE_SIZE = 30
FORM_FIELDS = ("process_id", "title", "organisation_code", "target_kind", "window_start", "window_end", "parent_id")


def _now() -> datetime:
    return current_engine().clock.now()


def _campaign(campaign_id: int) -> Campaign:
    """The campaign, if the signed-in person may read it at all."""
    campaign = campaign_by_id(db.session, campaign_id)
    if home_view(current_actor(), campaign, db.session) is None:
        raise NotAllowed(f"你无权查看集中活动 {campaign_id} / you may not see campaign {campaign_id}")
    return campaign


def _viewed_organisation(campaign: Campaign):
    """The organisation a dashboard or export is for (``?org=CODE``, default the person's own view)."""
    code = request.args.get("org")
    organisation = by_code(db.session, code) if code else home_view(current_actor(), campaign, db.session)
    require_view(current_actor(), campaign, organisation)
    return organisation


# ------------------------------------------------------------------------------------- list


@bp.get("/")
@login_required
def index():
    """The campaigns the signed-in person oversees (and those above them), newest first."""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    status = request.args.get("status") or None
    campaigns = visible_campaigns(db.session, current_actor(), limit=LIST_PAGE_SIZE + 1,
                                  offset=(page - 1) * LIST_PAGE_SIZE, status=status)
    return render_template("campaigns/list.html", campaigns=campaigns[:LIST_PAGE_SIZE], page=page,
                           has_next=len(campaigns) > LIST_PAGE_SIZE, status=status, statuses=STATUS_NAMES,
                           processes=PROCESSES, kinds=TARGET_KIND_NAMES,
                           may_launch=bool(launchable_roots(db.session, current_actor())))


# ----------------------------------------------------------------------------------- launch


@dataclass
class LaunchForm:
    """What the launch form holds, as entered (text), and the field errors to show beside it."""

    values: dict[str, str]
    params: dict[str, str]
    errors: dict[str, str]

    @classmethod
    def from_request(cls) -> LaunchForm:
        source = request.form if request.method == "POST" else request.args
        values = {name: (source.get(name) or "").strip() for name in FORM_FIELDS}
        params = {key[len("param_"):]: (value or "").strip() for key, value in source.items()
                  if key.startswith("param_")}
        return cls(values, params, {})

    def moments(self) -> tuple[datetime | None, datetime | None]:
        """The window, parsed; a bad or missing value becomes a field error."""
        found = []
        for name, end_of_day in (("window_start", False), ("window_end", True)):
            try:
                found.append(parse_moment(self.values[name], end_of_day))
            except ValueError:
                found.append(None)
                self.errors[name] = ("请填写日期或时间，如 2026-05-01 或 2026-05-01T09:00 / give a date or time such as "
                                     "2026-05-01 or 2026-05-01T09:00")
        return found[0], found[1]

    def parent_id(self) -> int | None:
        text = self.values["parent_id"]
        if text and not text.isdigit():
            self.errors["parent_id"] = "请选择上级活动 / choose a parent campaign"
        return int(text) if text.isdigit() else None


def _default_values() -> dict[str, str]:
    now = _now().astimezone(CHINA)
    end = now + timedelta(days=30)
    values = dict.fromkeys(FORM_FIELDS, "")
    values.update(window_start=now.strftime("%Y-%m-%dT%H:%M"), window_end=end.strftime("%Y-%m-%d"))
    return values


def _render_form(form: LaunchForm, status: int = 200):
    actor = current_actor()
    roots = launchable_roots(db.session, actor)
    if not roots:
        raise NotAllowed("只有组织者可以发起集中活动 / only organisers may launch campaigns")
    process = PROCESSES.get(form.values["process_id"])
    parents = [c for c in visible_campaigns(db.session, actor, limit=100) if c.status != CANCELLED]
    return render_template("campaigns/new.html", form=form, process=process, processes=PROCESSES,
                           kinds=TARGET_KIND_NAMES, roots=roots, parents=parents), status


@bp.get("/new")
@login_required
def new():
    """The launch form; choosing a process (``?process_id=``) shows its parameters."""
    form = LaunchForm.from_request()
    if not any(form.values.values()):
        form.values = _default_values()
    if form.values["process_id"] and form.values["process_id"] not in PROCESSES:
        form.errors["process_id"] = "请选择可发起的流程 / choose a process that can be launched"
    process = PROCESSES.get(form.values["process_id"])
    if process is not None and not form.values["target_kind"]:
        form.values["target_kind"] = process.target_kinds[0]
    return _render_form(form)


def _create_from(form: LaunchForm) -> Campaign:
    """Create the campaign in the session (not committed); :class:`FormInvalid` with every bad field."""
    start, end = form.moments()
    parent_id = form.parent_id()
    try:
        campaign = create_campaign(db.session, current_actor(), process_id=form.values["process_id"],
                                   title=form.values["title"], organisation_code=form.values["organisation_code"],
                                   target_kind=form.values["target_kind"], window_start=start, window_end=end,
                                   parameters=dict(form.params), now=_now(), parent_id=parent_id)
    except FormInvalid as invalid:
        raise FormInvalid([*_as_errors(form.errors), *invalid.errors]) from None
    if form.errors:
        raise FormInvalid(_as_errors(form.errors))
    return campaign


def _as_errors(errors: dict[str, str]) -> list[FieldError]:
    return [FieldError(name, message) for name, message in errors.items()]


@bp.post("/new")
@login_required
def create():
    """Check the form; show how many instances the campaign will start; on confirmation create and launch it."""
    form = LaunchForm.from_request()
    if request.form.get("action") == "edit":
        return _render_form(form)
    try:
        campaign = _create_from(form)
    except FormInvalid as invalid:
        db.session.rollback()
        form.errors = {("param_" + e.field if _is_parameter(form, e.field) else e.field): e.message
                       for e in invalid.errors}
        return _render_form(form, 422)
    if request.form.get("action") != "confirm":
        total = count_targets(db.session, campaign.organisation, campaign.target_kind)
        summary = _summary(campaign)
        db.session.rollback()  # nothing is created before the organiser confirms
        return render_template("campaigns/confirm.html", form=form, total=total, summary=summary,
                               scheduled=summary["window_start"] > _now())
    db.session.commit()
    numbers = launch_campaign(db.session, current_jobs(), campaign, _now())
    if campaign.status == "scheduled":
        flash(_("活动已排期，将于 %(moment)s 自动发起", moment=local_time(campaign.window_start)))
    else:
        flash(_("活动已发起，共 %(total)d 个对象，分 %(chunks)d 批创建", total=campaign.total_targets or 0,
                chunks=len(numbers)))
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


def _is_parameter(form: LaunchForm, name: str) -> bool:
    process = PROCESSES.get(form.values["process_id"])
    return process is not None and name in process.schema["properties"]


def _summary(campaign: Campaign) -> dict[str, Any]:
    process = campaign.process
    titles = process.parameter_titles()
    return {"process": process.name, "title": campaign.title, "organisation": campaign.organisation.name,
            "target_kind": TARGET_KIND_NAMES[campaign.target_kind], "window_start": campaign.window_start,
            "window_end": campaign.window_end,
            "parameters": [(titles.get(k, k), v) for k, v in campaign.parameters.items()]}


def _progress_text(progress) -> str:
    """The launch progress in words (the page and the JSON the progress bar polls say the same)."""
    text = _("已创建 %(launched)d / %(total)d 个流程实例（%(percent)d%%），%(done)d / %(chunks)d 批完成",
             launched=progress.launched, total=progress.total, percent=progress.percent,
             done=sum(1 for chunk in progress.chunks if chunk.state == "done"), chunks=len(progress.chunks))
    if progress.failed:
        text += _("，%(failed)d 个未能发起", failed=progress.failed)
    return text + _("。")


# -------------------------------------------------------------------------------- progress


@bp.get("/<int:campaign_id>")
@login_required
def show(campaign_id: int):
    """A campaign: what it is, its launch progress (the bar polls :func:`progress`), cancel and resume."""
    campaign = _campaign(campaign_id)
    actor = current_actor()
    progress = launch_progress(db.session, campaign)
    return render_template("campaigns/show.html", campaign=campaign, summary=_summary(campaign),
                           progress=progress, progress_text=_progress_text(progress), statuses=STATUS_NAMES,
                           may_manage=actor.holds(LAUNCHING_ROLE, campaign.organisation.path),
                           home=home_view(actor, campaign, db.session))


@bp.get("/<int:campaign_id>/progress")
@login_required
def progress(campaign_id: int):
    """Launched out of total, per chunk, as JSON (what the progress bar polls)."""
    campaign = _campaign(campaign_id)
    progress = launch_progress(db.session, campaign)
    body = progress.as_json()
    body["status_name"] = term(STATUS_NAMES.get(body["status"], body["status"]))
    body["text"] = _progress_text(progress)
    if campaign.status == CANCELLED:
        body["running"] = running_instances(db.session, campaign.id)
    return body


@bp.post("/<int:campaign_id>/cancel")
@login_required
def cancel(campaign_id: int):
    """Cancel a campaign with a reason; its open instances are ended in the background."""
    campaign = _campaign(campaign_id)
    try:
        cancel_campaign(db.session, current_jobs(), current_actor(), campaign, request.form.get("reason", ""), _now())
    except FormInvalid as invalid:
        db.session.rollback()
        flash(invalid.errors[0].message)
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    flash(_("活动已撤销，正在结束其流程实例"))
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/resume")
@login_required
def resume(campaign_id: int):
    """Enqueue again what is left of a launch (after a crash, or to retry targets that failed)."""
    campaign = _campaign(campaign_id)
    numbers = resume_campaign(db.session, current_jobs(), current_actor(), campaign, _now())
    flash(_("已重新提交 %(chunks)d 批", chunks=len(numbers)) if numbers else _("没有需要继续发起的对象"))
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


# ------------------------------------------------------------------------------- dashboard


@bp.get("/<int:campaign_id>/dashboard")
@login_required
def dashboard(campaign_id: int):
    """Completion per organisation one level down from ``?org=``, overdue tasks, and the people (paginated)."""
    campaign = _campaign(campaign_id)
    organisation = _viewed_organisation(campaign)
    status = request.args.get("status") or "all"
    if status not in PEOPLE_FILTERS:
        status = "all"
    after = parse_position(request.args.get("after"))
    now = _now()
    breakdown = organisation_breakdown(db.session, campaign, organisation, now)
    rows = people(db.session, campaign, organisation, now, status, after, PAGE_SIZE + 1)
    trail = [o for o in ancestors(db.session, organisation) if o.path.startswith(campaign.organisation.path)
             and current_actor().oversees(o.path)]
    return render_template("campaigns/dashboard.html", campaign=campaign, organisation=organisation,
                           breakdown=breakdown, people=rows[:PAGE_SIZE], has_next=len(rows) > PAGE_SIZE,
                           status=status, filters=PEOPLE_FILTERS, after=after, trail=trail, now=now)


@bp.get("/<int:campaign_id>/export.csv")
@login_required
def export_csv(campaign_id: int):
    """``?what=organisations`` (the numbers) or ``?what=people`` (everyone behind them), as CSV."""
    campaign = _campaign(campaign_id)
    organisation = _viewed_organisation(campaign)
    now = _now()
    if request.args.get("what") == "people":
        status = request.args.get("status") or "all"
        if status not in PEOPLE_FILTERS:
            status = "all"
        body = stream_with_context(people_csv(all_people(db.session, campaign, organisation, now, status)))
        return _download(Response(body, mimetype="text/csv"), f"campaign-{campaign.id}-{organisation.code}-people.csv")
    text = organisations_csv(organisation_breakdown(db.session, campaign, organisation, now))
    return _download(Response(text, mimetype="text/csv"), f"campaign-{campaign.id}-{organisation.code}.csv")


def _export_settings() -> ExportSettings:
    return export_settings(web_root=current_app.static_folder)


def _xlsx_now(campaign: Campaign, organisation) -> Response:
    """A small workbook built in the request."""
    now = _now()
    data = campaign_xlsx(campaign, organisation_breakdown(db.session, campaign, organisation, now),
                         all_people(db.session, campaign, organisation, now))
    return _download(Response(data, mimetype=XLSX_TYPE), f"campaign-{campaign.id}-{organisation.code}.xlsx")


@bp.get("/<int:campaign_id>/export.xlsx")
@login_required
def export_xlsx(campaign_id: int):
    """The numbers and the people of a subtree as one workbook; a large one is offered as a background export."""
    campaign = _campaign(campaign_id)
    organisation = _viewed_organisation(campaign)
    rows = target_count(db.session, campaign, organisation)
    if rows <= _export_settings().sync_rows:
        return _xlsx_now(campaign, organisation)
    return render_template("campaigns/export_offer.html", campaign=campaign, organisation=organisation, rows=rows)


@bp.post("/<int:campaign_id>/exports")
@login_required
def request_export(campaign_id: int):
    """Export the workbook: built at once when small, else as a background job whose page polls until it is ready."""
    campaign = _campaign(campaign_id)
    organisation = _viewed_organisation(campaign)
    rows = target_count(db.session, campaign, organisation)
    if rows <= _export_settings().sync_rows:
        return _xlsx_now(campaign, organisation)
    export, new = start_export(db.session, current_actor(), campaign, organisation, rows, _now())
    db.session.commit()
    if new:
        current_jobs().enqueue(EXPORT_JOB, {"export_id": export.id})
    return redirect(url_for("campaigns.export_status_page", export_id=export.id, wait=1), 303)


@bp.get("/exports/<int:export_id>")
@login_required
def export_status_page(export_id: int):
    """Where a background export stands; the page reloads itself until the workbook is ready, then fetches it."""
    export = export_for(db.session, current_actor(), export_id)
    return render_template("campaigns/export.html", export=export, wait=request.args.get("wait") == "1",
                           retention_hours=round(_export_settings().retention.total_seconds() / 3600))


@bp.get("/exports/<int:export_id>/status")
@login_required
def export_status(export_id: int):
    """Where a background export stands, as JSON."""
    export = export_for(db.session, current_actor(), export_id)
    return {"id": export.id, "status": export.status, "ready": export.status == "ready", "rows": export.rows,
            "expected_rows": export.expected_rows, "size": export.size,
            "download_url": url_for("campaigns.export_download", export_id=export.id) if export.finished else None}


@bp.get("/exports/<int:export_id>/download")
@login_required
def export_download(export_id: int):
    """The workbook of a finished background export (only for who asked, or an organiser over the organisation)."""
    export, path = open_export(db.session, current_actor(), export_id, _export_settings())
    response = send_file(path, mimetype=XLSX_TYPE, as_attachment=True, download_name=export.filename, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


def _download(response: Response, filename: str) -> Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def init_cli(app: Flask) -> None:
    """Register this module's `flask` commands (``flask campaign ...``)."""
    from .campaign_cli import campaign
    app.cli.add_command(campaign)

