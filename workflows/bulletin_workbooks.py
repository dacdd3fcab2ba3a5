"""The bulletins as Excel workbooks (openpyxl): Chinese headers, numbers as numbers, a frozen header row.

Each function returns the ``.xlsx`` file as bytes.  Sheets are written in openpyxl's write-only
mode, so a ledger of a whole province (100,000 cadres) streams instead of being held cell by cell.
Rates are stored as fractions with a percentage format (0.6667 shows as 66.7 %); points as numbers
with two places.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from .bulletins import ANNEX4_TITLE, Annex4Line, Bulletin, HalfYearReview, YearEndEvaluation
from .education_practice import PRACTICE_ITEMS
from .organisations import KIND_NAMES_ZH
from .rankings import CadreStanding, OrganisationStanding
from .roster import CADRE_KIND_NAMES_ZH

PERCENT = "0.0%"
POINTS = "0.00"
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="B71C1C")
TITLE_FONT = Font(bold=True, size=14)


@dataclass(frozen=True)
class Column:
    """A column: its Chinese header, its width (characters) and the number format of its cells."""

    header: str
    width: float = 12
    number_format: str | None = None


def _cell(sheet, value, number_format: str | None = None, font: Font | None = None, fill=None):
    cell = WriteOnlyCell(sheet, value=value)
    if number_format and value is not None and not isinstance(value, str):
        cell.number_format = number_format
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    return cell


def _table(workbook: Workbook, title: str, columns: Sequence[Column], rows: Iterable[Sequence]) -> None:
    """A sheet whose first row is the header (frozen), then one row per item."""
    sheet = workbook.create_sheet(title)
    sheet.freeze_panes = "A2"
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.append([_cell(sheet, column.header, font=HEADER_FONT, fill=HEADER_FILL) for column in columns])
    for row in rows:
        sheet.append([_cell(sheet, value, column.number_format) for value, column in zip(row, columns)])


def _key_values(workbook: Workbook, title: str, heading: str, pairs: Sequence[tuple[str, object, str | None]]) -> None:
    """A sheet of label / value lines under a frozen header ("项目", "数值")."""
    sheet = workbook.create_sheet(title)
    sheet.freeze_panes = "A2"
    sheet.column_dimensions["A"].width = 34
    sheet.column_dimensions["B"].width = 24
    sheet.append([_cell(sheet, "项目", font=HEADER_FONT, fill=HEADER_FILL),
                  _cell(sheet, "数值", font=HEADER_FONT, fill=HEADER_FILL)])
    sheet.append([_cell(sheet, heading, font=TITLE_FONT)])
    for label, value, number_format in pairs:
        sheet.append([label, _cell(sheet, value, number_format)])


def _save(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


ORG_COLUMNS = (Column("名次", 8), Column("组织", 28), Column("类型", 12), Column("综合得分", 10, POINTS),
               Column("团干部数", 10), Column("平均积分", 10, POINTS), Column("“五个一”达标周期", 14),
               Column("应达标周期", 12), Column("“五个一”达标率", 14, PERCENT), Column("集中活动完成数", 14),
               Column("集中活动总数", 12), Column("集中活动完成率", 14, PERCENT), Column("联系青年数", 12),
               Column("绑定手机端", 12), Column("手机端绑定率", 12, PERCENT))


def _org_row(row: OrganisationStanding) -> list:
    return [row.rank, row.name, KIND_NAMES_ZH.get(row.kind, row.kind), row.score, row.cadres, row.average_points,
            row.periods_met, row.periods_due, row.compliance_rate, row.campaign_done, row.campaign_total,
            row.campaign_rate, row.contacts, row.bound, row.binding_rate]


CADRE_COLUMNS = (Column("名次", 8), Column("姓名", 12), Column("编号", 12), Column("类别", 8), Column("所在组织", 28),
                 Column("积分", 10, POINTS), Column("“五个一”达标周期", 14), Column("应达标周期", 12),
                 Column("本周期活动数", 12), Column("联系青年数", 12), Column("绑定手机端", 12),
                 Column("手机端绑定率", 12, PERCENT))


def _cadre_row(row: CadreStanding) -> list:
    return [row.rank, row.name, row.code, CADRE_KIND_NAMES_ZH.get(row.kind, row.kind), row.organisation_name,
            row.points, row.periods_met, row.periods_due, row.period_activities, row.contacts, row.bound,
            row.binding_rate]


def bulletin_workbook(bulletin: Bulletin) -> bytes:
    """The monthly bulletin: overview, child organisations, own cadres, the named, revoked records."""
    workbook = Workbook(write_only=True)
    s, f = bulletin.standing, bulletin.facts
    _key_values(workbook, "概况", bulletin.title, [
        ("通报月份", bulletin.month, None), ("排名日期", bulletin.snapshot_day.isoformat(), None),
        ("综合得分", s.score, POINTS), ("在同级组织中的名次", s.rank_among_siblings, None),
        ("同级组织数", s.siblings, None), ("团干部数", s.cadres, None), ("平均积分（年度累计）", s.average_points, POINTS),
        ("“五个一”达标周期（年度累计）", s.periods_met, None), ("应达标周期", s.periods_due, None),
        ("“五个一”达标率", s.compliance_rate, PERCENT), ("本月开展活动数", f.activities, None),
        ("本月撤销记录数", f.revoked, None), ("本月集中活动完成数", f.campaign_done, None),
        ("本月集中活动总数", f.campaign_total, None), ("本月集中活动完成率", f.campaign_rate, PERCENT),
        ("联系青年数", s.contacts, None), ("绑定手机端人数", s.bound, None), ("手机端绑定率", s.binding_rate, PERCENT),
        ("本月抽查记录数", bulletin.spot_checks.sampled, None), ("已核查", bulletin.spot_checks.checked, None),
        ("核查属实", bulletin.spot_checks.confirmed, None), ("核查不属实", bulletin.spot_checks.false, None),
        ("无法联系", bulletin.spot_checks.unreachable, None),
        ("青年满意度评价数", bulletin.satisfaction.count, None),
        ("青年满意度平均星级", bulletin.satisfaction.average, POINTS)])
    _table(workbook, "下级组织排名", ORG_COLUMNS + (Column("本月活动数", 12), Column("本月集中活动完成率", 16, PERCENT)),
           (_org_row(row) + [bulletin.child_facts[row.organisation_id].activities,
                             bulletin.child_facts[row.organisation_id].campaign_rate]
            for row in bulletin.children))
    _table(workbook, "团干部排名", CADRE_COLUMNS, (_cadre_row(row) for row in bulletin.cadres))
    _table(workbook, "通报名单", (Column("类别", 10), Column("名次", 8), Column("名称", 28), Column("积分/得分", 12, POINTS)),
           [["组织", row.rank, row.name, row.score] for row in bulletin.named_children]
           + [["团干部", row.rank, row.name, row.points] for row in bulletin.named_cadres])
    _table(workbook, "撤销记录", (Column("活动日期", 12), Column("活动类别", 24), Column("团干部", 12),
                                Column("所在组织", 28), Column("撤销日期", 12), Column("原因", 48)),
           ([r.held_on, r.kind, r.cadre_name or "（组织活动）", r.organisation_name, r.revoked_on.isoformat(), r.reason]
            for r in bulletin.revoked))
    return _save(workbook)


def half_year_workbook(review: HalfYearReview) -> bytes:
    """The half-year review: the organisation, its children and its own cadres, with the binding rates."""
    workbook = Workbook(write_only=True)
    s = review.standing
    _key_values(workbook, "概况", review.title, [
        ("考核日期", review.snapshot_day.isoformat(), None), ("综合得分", s.score, POINTS),
        ("团干部数", s.cadres, None), ("平均积分", s.average_points, POINTS),
        ("“五个一”达标率", s.compliance_rate, PERCENT), ("集中活动完成率", s.campaign_rate, PERCENT),
        ("联系青年数", s.contacts, None), ("绑定手机端人数", s.bound, None), ("手机端绑定率", s.binding_rate, PERCENT)])
    _table(workbook, "下级组织", ORG_COLUMNS, (_org_row(row) for row in review.children))
    _table(workbook, "团干部", CADRE_COLUMNS, (_cadre_row(row) for row in review.cadres))
    return _save(workbook)


def year_end_workbook(evaluation: YearEndEvaluation) -> bytes:
    """The year-end evaluation: the rule, the children, and each cadre's verdict."""
    workbook = Workbook(write_only=True)
    s = evaluation.standing
    _key_values(workbook, "概况", evaluation.title, [
        ("考核日期", evaluation.snapshot_day.isoformat(), None), ("合格标准", evaluation.rule, None),
        ("团干部数", len(evaluation.verdicts), None), ("合格人数", evaluation.passed, None),
        ("不合格人数", len(evaluation.verdicts) - evaluation.passed, None), ("综合得分", s.score, POINTS),
        ("平均积分", s.average_points, POINTS), ("手机端绑定率", s.binding_rate, PERCENT)])
    _table(workbook, "下级组织", ORG_COLUMNS, (_org_row(row) for row in evaluation.children))
    _table(workbook, "团干部考核结果", CADRE_COLUMNS[:6] + (Column("撤销记录数", 10), Column("考核结果", 10),
                                                     Column("说明", 48)),
           (_cadre_row(v.standing)[:6] + [v.revoked, "合格" if v.passed else "不合格", v.reason]
            for v in evaluation.verdicts))
    return _save(workbook)


ANNEX4_COLUMNS = (Column("序号", 6), Column("所在单位（部门）", 28), Column("姓名", 12), Column("干部类别", 10),
                  Column("联系指导的基层团委（团总支）", 30), Column("全程参与的团支部", 28),
                  Column("已完成任务清单事项（项）", 14), Column("任务清单事项总数", 12), Column("是否已讲主题团课", 12),
                  Column("已完成事项", 60), Column("备注", 28))


def annex4_workbook(lines: Sequence[Annex4Line], unit_name: str, year: int) -> bytes:
    """Annex 4: one line per cadre of the unit (团干部指导参与基层团组织“一学一做”教育实践情况汇总表)."""
    workbook = Workbook(write_only=True)
    _table(workbook, "附件4汇总表", ANNEX4_COLUMNS,
           ([line.number, line.unit, line.cadre_name, line.kind, line.committee or "", line.branch or "",
             len(line.items_done), len(PRACTICE_ITEMS), "是" if line.lecture_given else "否", "、".join(line.items_done),
             line.remark] for line in lines))
    _key_values(workbook, "说明", f"{unit_name} {year}年{ANNEX4_TITLE}", [
        ("团干部数", len(lines), None),
        ("已确定联系的基层团委（团总支）", sum(1 for line in lines if line.committee), None),
        ("已确定参与的团支部", sum(1 for line in lines if line.branch), None),
        ("已讲主题团课", sum(1 for line in lines if line.lecture_given), None),
        ("任务清单全部完成", sum(1 for line in lines if len(line.items_done) == len(PRACTICE_ITEMS)), None)])
    return _save(workbook)


__all__ = ["bulletin_workbook", "half_year_workbook", "year_end_workbook", "annex4_workbook"]
