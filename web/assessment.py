"""Pages and commands of the assessment: daily rankings, bulletins, the half-year and year-end reviews, Annex 4.

Every page needs a signed-in person and checks the organisation asked for lies in their subtree
(a staff role's organisation, or for a cadre their own organisation).  Pages only read the
ranking snapshots (``workflows.rankings``) with paginated queries; the bulletins are computed from
them (``workflows.bulletins``) and offered as a printable page and as a workbook.
"""
from __future__ import annotations

import re
import time
from datetime import date, timedelta
from pathlib import Path

import click
from flask import Blueprint, Flask, Response, abort, flash, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import EngineError, NotAllowed
from workflows import bulletin_workbooks, bulletins, charts, rankings
from workflows.models import Organisation
from workflows.organisations import KIND_NAMES_ZH, ancestors, by_code, is_within
from workflows.roles import Actor
from workflows.roster import CADRE_KIND_NAMES_ZH

from .extensions import db
from .i18n import local_date, wording
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("assessment", __name__, url_prefix="/assessment")

PAGE_SIZE = 50
MAX_PAGE = 2000          # offset pagination stops here (100,000 cadres at 50 a page)
HISTORY_DAYS = 30
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONTH = re.compile(r"^\d{4}-\d{2}$")


# ----------------------------------------------------------------------------------- rights

def may_see(actor: Actor, org: Organisation) -> bool:
    """Whether ``actor`` may see the assessment of ``org``: it lies under one of their roles or, for a cadre,
    under their own organisation."""
    if actor.oversees(org.path):
        return True
    return actor.cadre_id is not None and actor.organisation_path is not None \
        and is_within(org.path, actor.organisation_path)


def home_organisation(actor: Actor) -> str | None:
    """The code of the highest organisation ``actor`` may see (their widest role, else their own)."""
    if actor.grants:
        return min(actor.grants, key=lambda grant: (len(grant[2]), grant[2]))[1]
    return actor.organisation_code if actor.cadre_id is not None else None


def _visible(code: str) -> Organisation:
    org = by_code(db.session, code)
    if not may_see(current_actor(), org):
        raise NotAllowed(f"你无权查看「{org.name}」的考核情况 / you may not see the assessment of {code}")
    return org


def _day_argument() -> date | None:
    """The ``day`` asked for (the latest computed one by default); ``None`` when nothing was computed."""
    raw = request.args.get("day")
    if raw:
        try:
            asked = date.fromisoformat(raw)
        except ValueError:
            abort(400, description="日期格式应为 YYYY-MM-DD / day must be YYYY-MM-DD")
        return rankings.latest_day(db.session, on_or_before=asked)
    return rankings.latest_day(db.session)


def _page() -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def _breadcrumbs(org: Organisation) -> list[Organisation]:
    actor = current_actor()
    return [o for o in ancestors(db.session, org) if may_see(actor, o)]


@bp.app_template_filter("percent")
def _percent(rate) -> str:
    return charts.percent(rate)


@bp.app_template_filter("points")
def _points(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _common(org: Organisation, day: date | None) -> dict:
    return {"org": org, "day": day, "crumbs": _breadcrumbs(org), "kind_names": KIND_NAMES_ZH,
            "cadre_kind_names": CADRE_KIND_NAMES_ZH, "last_month": _last_month()}


def _last_month() -> str:
    first = rankings.local_today(current_engine().clock.now()).replace(day=1)
    previous = first - timedelta(days=1)
    return f"{previous.year:04d}-{previous.month:02d}"


# ------------------------------------------------------------------------------------ pages

@bp.get("/")
@login_required
def index():
    """The ranking of the highest organisation the person may see."""
    code = home_organisation(current_actor())
    if code is None:
        raise NotAllowed("只有团干部和工作人员可以查看考核排名 / only cadres and staff see the rankings")
    return redirect(url_for("assessment.organisations", code=code))


@bp.get("/organisations/<code>")
@login_required
def organisations(code: str):
    """An organisation's figures and its children ranked among themselves (or every organisation at a depth)."""
    org = _visible(code)
    day = _day_argument()
    if day is None:
        return render_template("assessment/no_ranking.html", **_common(org, None)), 404
    sort = request.args.get("sort", "score")
    if sort not in rankings.ORG_SORTS:
        abort(400, description=f"排序方式应为 {', '.join(rankings.ORG_SORTS)} / unknown sort")
    page = _page()
    depth = request.args.get("depth", type=int)
    if depth is not None and depth > org.depth:
        rows, total = rankings.depth_ranking(db.session, org, depth, day, limit=PAGE_SIZE,
                                             offset=(page - 1) * PAGE_SIZE)
    else:
        depth = None
        total = rankings.child_count(db.session, org, day)
        rows = rankings.child_ranking(db.session, org, day, sort=sort, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    standing = rankings.organisation_standing(db.session, org, day)
    history = rankings.organisation_history(db.session, org, day - timedelta(days=HISTORY_DAYS), day)
    chart_compliance = charts.compliance_bars([(row.name, row.compliance_rate) for row in rows],
                                              title=_("%(org)s下级组织“五个一”达标率", org=org.name), wording=wording())
    chart_history = charts.rank_over_time([(point.day, point.rank) for point in history],
                                          title=_("%(org)s在同级组织中的排名（近%(days)d天）", org=org.name,
                                                  days=HISTORY_DAYS),
                                          of=standing.siblings if standing else None, wording=wording())
    chart_points = charts.points_histogram(list(standing.points_histogram) if standing else [0] * 10,
                                           title=_("%(org)s团干部积分分布", org=org.name), wording=wording())
    return render_template("assessment/organisations.html", **_common(org, day), rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), sort=sort, sorts=rankings.ORG_SORTS, depth=depth,
                           standing=standing, days=rankings.computed_days(db.session, limit=60),
                           chart_compliance=chart_compliance, chart_history=chart_history, chart_points=chart_points)


@bp.get("/organisations/<code>/cadres")
@login_required
def cadres(code: str):
    """The cadres of an organisation's subtree (or ``scope=own``: at home there) ranked by points."""
    org = _visible(code)
    day = _day_argument()
    if day is None:
        return render_template("assessment/no_ranking.html", **_common(org, None)), 404
    scope = request.args.get("scope", "subtree")
    if scope not in rankings.SCOPES:
        abort(400, description="范围应为 subtree 或 own / scope must be subtree or own")
    page = _page()
    rows = rankings.cadre_ranking(db.session, org, day, scope, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    standing = rankings.organisation_standing(db.session, org, day, count_siblings=False)
    total = 0 if standing is None else standing.own_cadres if scope == "own" else standing.cadres
    chart_points = charts.points_histogram(list(standing.points_histogram) if standing else [0] * 10,
                                           title=_("%(org)s团干部积分分布（%(day)s）", org=org.name,
                                                   day=local_date(day)), wording=wording())
    return render_template("assessment/cadres.html", **_common(org, day), rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), scope=scope, standing=standing,
                           chart_points=chart_points)


YEARS_SHOWN = 20
CHART_DAYS = 10_000  # every kept snapshot: the last 92 days, then each month's last day


@bp.get("/organisations/<code>/history")
@login_required
def organisation_history(code: str):
    """An organisation's ranking over the years (历年): each year's last snapshot, and its rank over time."""
    org = _visible(code)
    days = rankings.computed_days(db.session, limit=CHART_DAYS)
    if not days:
        return render_template("assessment/no_ranking.html", **_common(org, None)), 404
    year_ends: dict[int, date] = {}
    for day in days:  # newest first: the first day seen of a year is its last computed one
        year_ends.setdefault(day.year, day)
    years = [(year, rankings.organisation_standing(db.session, org, day))
             for year, day in list(year_ends.items())[:YEARS_SHOWN]]
    history = rankings.organisation_history(db.session, org, days[-1], days[0])
    siblings = next((standing.siblings for _year, standing in years if standing is not None), None)
    chart = charts.rank_over_time([(point.day, point.rank) for point in history],
                                  title=_("%(org)s在同级组织中的排名（历年）", org=org.name), of=siblings,
                                  wording=wording())
    return render_template("assessment/history.html", **_common(org, days[0]), years=years, chart=chart)


def _month(month: str) -> str:
    if not MONTH.match(month):
        abort(404)
    return month


@bp.get("/bulletins/<code>/<month>")
@login_required
def bulletin(code: str, month: str):
    """The monthly bulletin as a page with a print stylesheet (the printable form)."""
    org = _visible(code)
    report = bulletins.monthly_bulletin(db.session, org, _month(month))
    chart_compliance = charts.compliance_bars([(row.name, row.compliance_rate) for row in report.children],
                                              title=_("下级组织“五个一”达标率"), wording=wording())
    chart_points = charts.points_histogram(list(report.standing.points_histogram), title=_("团干部积分分布"),
                                           wording=wording())
    return render_template("assessment/bulletin.html", **_common(org, report.snapshot_day), b=report,
                           chart_compliance=chart_compliance, chart_points=chart_points,
                           issued=bulletins.issued(db.session, org))


def _xlsx(data: bytes, filename: str) -> Response:
    from urllib.parse import quote
    return Response(data, mimetype=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"{quote(filename.encode('ascii', 'ignore').decode() or 'x')}\"; "
                               f"filename*=UTF-8''{quote(filename)}"})


@bp.get("/bulletins/<code>/<month>.xlsx")
@login_required
def bulletin_xlsx(code: str, month: str):
    """The monthly bulletin as a workbook."""
    org = _visible(code)
    report = bulletins.monthly_bulletin(db.session, org, _month(month), all_cadres=True)
    return _xlsx(bulletin_workbooks.bulletin_workbook(report), f"{org.code}-{month}-月度通报.xlsx")


@bp.get("/half-year/<code>/<int:year>")
@login_required
def half_year(code: str, year: int):
    """The half-year review (mid-June), with the mobile-binding rate."""
    org = _visible(code)
    review = bulletins.half_year_review(db.session, org, year)
    chart = charts.compliance_bars([(row.name, row.binding_rate) for row in review.children],
                                   title=_("下级组织手机端绑定率"), wording=wording())
    return render_template("assessment/half_year.html", **_common(org, review.snapshot_day), r=review, chart=chart)


@bp.get("/half-year/<code>/<int:year>.xlsx")
@login_required
def half_year_xlsx(code: str, year: int):
    """The half-year review as a workbook."""
    org = _visible(code)
    return _xlsx(bulletin_workbooks.half_year_workbook(bulletins.half_year_review(db.session, org, year)),
                 f"{org.code}-{year}-半年考核.xlsx")


@bp.get("/year-end/<code>/<int:year>")
@login_required
def year_end(code: str, year: int):
    """The year-end evaluation: the pass rule, the counts, the cadres who failed."""
    org = _visible(code)
    page = _page()
    evaluation = bulletins.year_end_page(db.session, org, year, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return render_template("assessment/year_end.html", **_common(org, evaluation.snapshot_day), e=evaluation,
                           failed=evaluation.failed, failed_total=evaluation.failed_total, page=page,
                           pages=max(1, -(-evaluation.failed_total // PAGE_SIZE)), total=evaluation.failed_total,
                           may_record=current_actor().holds("organiser", org.path))


@bp.post("/year-end/<code>/<int:year>")
@login_required
def record_year_end(code: str, year: int):
    """Write the verdicts as the cadres' assessment results (an organiser of the organisation or above)."""
    org = _visible(code)
    actor = current_actor()
    if not actor.holds("organiser", org.path):
        raise NotAllowed(f"只有「{org.name}」及上级的组织者可以确认年终考核结果 / only an organiser of {code} or above "
                         "may record the year-end results")
    evaluation = bulletins.year_end_evaluation(db.session, org, year)
    written = bulletins.record_year_end(db.session, evaluation, actor.username, current_engine().clock.now())
    db.session.commit()
    flash(_("已记录%(n)d名团干部的%(year)d年度考核结果", n=written, year=year))
    return redirect(url_for("assessment.year_end", code=code, year=year))


@bp.get("/year-end/<code>/<int:year>.xlsx")
@login_required
def year_end_xlsx(code: str, year: int):
    """The year-end evaluation as a workbook."""
    org = _visible(code)
    return _xlsx(bulletin_workbooks.year_end_workbook(bulletins.year_end_evaluation(db.session, org, year)),
                 f"{org.code}-{year}-年终考核.xlsx")


@bp.get("/annex4/<code>/<int:year>.xlsx")
@login_required
def annex4_xlsx(code: str, year: int):
    """The Annex 4 ledger of the organisation's cadres as a workbook."""
    org = _visible(code)
    lines = bulletins.annex4_ledger(db.session, org, year)
    return _xlsx(bulletin_workbooks.annex4_workbook(lines, org.name, year), f"{org.code}-{year}-附件4汇总表.xlsx")


# ------------------------------------------------------------------------------------ commands

assessment_cli = AppGroup("assessment", help="Rankings and bulletins (考核排名与通报).")


def _fail(error: EngineError | ValueError) -> None:
    db.session.rollback()
    click.echo(f"错误 / error: {getattr(error, 'message', error)}", err=True)
    raise SystemExit(1)


@assessment_cli.command("rank")
@click.option("--day", "day_text", default=None, help="YYYY-MM-DD (default: today in Beijing time).")
def rank_command(day_text: str | None) -> None:
    """Compute the ranking snapshot of a day (replacing an earlier one of the same day)."""
    now = current_engine().clock.now()
    try:
        day = date.fromisoformat(day_text) if day_text else rankings.local_today(now)
    except ValueError:
        raise click.BadParameter("日期格式应为 YYYY-MM-DD / day must be YYYY-MM-DD", param_hint="--day") from None
    began = time.perf_counter()
    result = rankings.compute_rankings(db.session, day, now)
    db.session.commit()
    click.echo(f"ranked {result.cadres:,} cadres and {result.organisations:,} organisations for {day} "
               f"in {time.perf_counter() - began:.1f} s")


@assessment_cli.command("bulletin")
@click.option("--org", "code", required=True, help="Organisation code.")
@click.option("--month", required=True, help="YYYY-MM.")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the workbook to this file.")
def bulletin_command(code: str, month: str, xlsx_path: Path | None) -> None:
    """Print an organisation's monthly bulletin (and write its workbook)."""
    try:
        org = by_code(db.session, code)
        report = bulletins.monthly_bulletin(db.session, org, month, all_cadres=xlsx_path is not None)
    except (EngineError, ValueError) as error:
        _fail(error)
    s, f = report.standing, report.facts
    lines = [report.title, f"排名日期 {report.snapshot_day}",
             f"综合得分 {s.score}（同级第{s.rank_among_siblings}名 / 共{s.siblings}个）",
             f"团干部 {s.cadres} 人，平均积分 {_points(s.average_points)}",
             f"“五个一”达标 {s.periods_met}/{s.periods_due}（{charts.percent(s.compliance_rate)}）",
             f"本月活动 {f.activities} 次，撤销记录 {f.revoked} 条",
             f"本月集中活动完成 {f.campaign_done}/{f.campaign_total}（{charts.percent(f.campaign_rate)}）",
             f"手机端绑定 {s.bound}/{s.contacts}（{charts.percent(s.binding_rate)}）",
             (f"抽查 {report.spot_checks.sampled} 条：属实 {report.spot_checks.confirmed}，"
              f"不属实 {report.spot_checks.false}，无法联系 {report.spot_checks.unreachable}"),
             f"青年满意度 {report.satisfaction.count} 条评价，平均 {_points(report.satisfaction.average)} 星"]
    lines.append("下级组织排名：")
    lines += [f"  {row.rank}. {row.name} {row.score}" for row in report.children]
    if report.named_children or report.named_cadres:
        lines.append("通报（排名靠后）：" + "、".join([row.name for row in report.named_children]
                                            + [row.name for row in report.named_cadres]))
    click.echo("\n".join(lines))
    if xlsx_path is not None:
        xlsx_path.write_bytes(bulletin_workbooks.bulletin_workbook(report))
        click.echo(f"workbook written to {xlsx_path}")


@assessment_cli.command("year-end")
@click.option("--org", "code", required=True, help="Organisation code (its whole subtree is evaluated).")
@click.option("--year", type=int, required=True)
@click.option("--record", is_flag=True, help="Write the verdicts as the cadres' assessment results.")
def year_end_command(code: str, year: int, record: bool) -> None:
    """Print the year-end evaluation's counts (and with --record write every verdict)."""
    try:
        evaluation = bulletins.year_end_evaluation(db.session, by_code(db.session, code), year)
    except (EngineError, ValueError) as error:
        _fail(error)
    click.echo(f"{evaluation.title}：{len(evaluation.verdicts)} 人，合格 {evaluation.passed} 人（{evaluation.rule}）")
    if record:
        written = bulletins.record_year_end(db.session, evaluation, "cli", current_engine().clock.now())
        db.session.commit()
        click.echo(f"recorded {written} results")


def init_cli(app: Flask) -> None:
    """Register this module's `flask` commands."""
    app.cli.add_command(assessment_cli)


__all__ = ["bp", "init_cli", "may_see", "home_organisation"]
