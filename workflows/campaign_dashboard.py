"""A campaign's numbers: completion per organisation down the tree, overdue tasks, the people behind them, exports.

Every query is a bulk, indexed query over the campaign's targets (``campaign_target`` by
campaign and organisation) joined to the instances and the ``human_task`` projection, never the
serialized state.  Counts are grouped per organisation in SQL (at most one row per organisation
of the subtree) and rolled up the tree in Python, so a view costs the same few queries at 100
targets as at 100,000.  Lists of people are paginated by (organisation, target id) — the order
of the ``(campaign, organisation, id)`` index, so a page is one index range — and exports stream
them in batches.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl import Workbook
from sqlalchemy import ColumnElement, and_, exists, func, select, tuple_
from sqlalchemy.orm import Session

from engine.models import HumanTask, ProcessInstance

from .campaign_processes import CHINA
from .campaigns import STATUS_NAMES, Campaign, CampaignTarget
from .models import Cadre, Organisation
from .organisations import ancestor_ids, in_subtree

OPEN = HumanTask.OPEN_STATES
PAGE_SIZE = 50
EXPORT_BATCH = 2000
INSTANCE_STATUS_NAMES = {"running": "进行中", "completed": "已完成", "cancelled": "已撤销", "error": "出错",
                         None: "未发起"}
PEOPLE_FILTERS = {"all": "全部", "open": "进行中", "done": "已完成", "overdue": "有逾期任务", "not_launched": "未发起",
                  "cancelled": "已撤销"}


@dataclass
class OrganisationCount:
    """A campaign's numbers at one organisation: its own targets, or a whole subtree's rolled up."""

    organisation_id: int
    code: str
    name: str
    kind: str
    own_only: bool = False  # the row of an organisation's own targets ("本级"), not its subtree
    total: int = 0
    launched: int = 0
    done: int = 0
    running: int = 0
    overdue_tasks: int = 0

    @property
    def rate(self) -> float:
        """Completed instances out of targets, 0–1 (0 when there are no targets)."""
        return self.done / self.total if self.total else 0.0

    @property
    def percent(self) -> int:
        """The completion rate in whole percent, for progress bars."""
        return 100 * self.done // self.total if self.total else 0

    def add(self, other: OrganisationCount) -> None:
        """Add another row's counts to this one."""
        self.total += other.total
        self.launched += other.launched
        self.done += other.done
        self.running += other.running
        self.overdue_tasks += other.overdue_tasks


@dataclass
class Breakdown:
    """A campaign seen from one organisation: its subtree's totals, its own row and one row per child."""

    organisation: Organisation
    totals: OrganisationCount
    rows: list[OrganisationCount] = field(default_factory=list)


def _in_view(session: Session, campaign: Campaign, organisation: Organisation) -> ColumnElement[bool]:
    """SQL condition: a target of ``campaign`` lies in ``organisation``'s subtree.

    A list of organisation ids (one indexed query, at most a few thousand), not a join on the path
    range: with a join, PostgreSQL's generic plan for the prepared statement guesses a tiny
    subtree and pages through a province in seconds instead of milliseconds.
    """
    condition = CampaignTarget.campaign_id == campaign.id
    if organisation.id == campaign.organisation_id:
        return condition  # the campaign's own root: every target is in view
    ids = session.scalars(select(Organisation.id).where(in_subtree(Organisation.path, organisation.path))).all()
    return and_(condition, CampaignTarget.organisation_id.in_(ids))


def target_count(session: Session, campaign: Campaign, organisation: Organisation) -> int:
    """How many targets of ``campaign`` lie in ``organisation``'s subtree (the rows of a people export)."""
    return session.scalar(select(func.count(CampaignTarget.id)).where(_in_view(session, campaign, organisation)))


def _direct_counts(session: Session, campaign: Campaign, root: Organisation, now: datetime) -> dict[int, list[int]]:
    """[total, launched, done, running, overdue tasks] per organisation holding targets, in ``root``'s subtree."""
    in_view = _in_view(session, campaign, root)
    counts = (select(CampaignTarget.organisation_id, func.count(CampaignTarget.id), func.count(CampaignTarget.instance_id),
                     func.count(ProcessInstance.id).filter(ProcessInstance.status == "completed"),
                     func.count(ProcessInstance.id).filter(ProcessInstance.status == "running"))
              .outerjoin(ProcessInstance, ProcessInstance.id == CampaignTarget.instance_id)
              .where(in_view).group_by(CampaignTarget.organisation_id))
    direct = {org_id: [total, launched, done, running, 0]
              for org_id, total, launched, done, running in session.execute(counts)}
    overdue = (select(CampaignTarget.organisation_id, func.count(HumanTask.id))
               .join(HumanTask, HumanTask.instance_id == CampaignTarget.instance_id)
               .where(in_view, HumanTask.state.in_(OPEN), HumanTask.due_at < now)
               .group_by(CampaignTarget.organisation_id))
    for org_id, tasks in session.execute(overdue):
        direct.setdefault(org_id, [0, 0, 0, 0, 0])[4] = tasks
    return direct


def organisation_breakdown(session: Session, campaign: Campaign, organisation: Organisation,
                           now: datetime) -> Breakdown:
    """Completion per organisation one level down from ``organisation`` (each child's subtree rolled up).

    The first row, if any, is ``organisation``'s own targets (cadres working in it, or the organ
    itself); then one row per child organisation with targets in its subtree, in tree order.
    """
    direct = _direct_counts(session, campaign, organisation, now)
    paths = dict(session.execute(select(Organisation.id, Organisation.path)
                                 .where(Organisation.id.in_(list(direct)))).all()) if direct else {}
    children = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.parent_id == organisation.id)
                                                 .order_by(Organisation.path))}
    totals = _row(organisation)
    own = _row(organisation, own_only=True)
    by_child = {child_id: _row(child) for child_id, child in children.items()}
    depth = len(ancestor_ids(organisation.path))
    for org_id, values in direct.items():
        row = OrganisationCount(org_id, "", "", "", False, *values)
        totals.add(row)
        chain = ancestor_ids(paths[org_id])
        (by_child[chain[depth]] if len(chain) > depth and chain[depth] in by_child else own).add(row)
    rows = ([own] if own.total else []) + [row for row in by_child.values() if row.total]
    return Breakdown(organisation, totals, rows)


def _row(org: Organisation, own_only: bool = False) -> OrganisationCount:
    return OrganisationCount(org.id, org.code, org.name, org.kind, own_only)


# -------------------------------------------------------------------------------- the people


@dataclass(frozen=True)
class PersonRow:
    """One target behind the numbers: who, where, their instance, and the open task they are on."""

    target_id: int
    organisation_id: int
    cadre_name: str | None
    organisation_code: str
    organisation_name: str
    instance_id: int | None
    instance_status: str | None
    open_task: str | None
    open_task_due: datetime | None
    open_tasks: int
    overdue: bool

    @property
    def status_name(self) -> str:
        """The instance status in Chinese."""
        return INSTANCE_STATUS_NAMES.get(self.instance_status, self.instance_status or "")

    @property
    def position(self) -> str:
        """Where the next page starts after this row (``"<organisation id>.<target id>"``)."""
        return f"{self.organisation_id}.{self.target_id}"


def _people_query(session: Session, campaign: Campaign, organisation: Organisation, status: str, now: datetime):
    overdue = exists().where(HumanTask.instance_id == CampaignTarget.instance_id, HumanTask.state.in_(OPEN),
                             HumanTask.due_at < now)
    query = (select(CampaignTarget.id, CampaignTarget.organisation_id, Cadre.name, Organisation.code,
                    Organisation.name, CampaignTarget.instance_id, ProcessInstance.status)
             .join(Organisation, Organisation.id == CampaignTarget.organisation_id)
             .outerjoin(Cadre, Cadre.id == CampaignTarget.cadre_id)
             .outerjoin(ProcessInstance, ProcessInstance.id == CampaignTarget.instance_id)
             .where(_in_view(session, campaign, organisation)))
    filters = {"all": None, "open": ProcessInstance.status == "running",
               "done": ProcessInstance.status == "completed", "cancelled": ProcessInstance.status == "cancelled",
               "not_launched": CampaignTarget.instance_id.is_(None), "overdue": overdue}
    if status not in filters:
        raise ValueError(f"未知的筛选 {status!r} / unknown filter; one of {', '.join(filters)}")
    if filters[status] is not None:
        query = query.where(filters[status])
    return query.order_by(CampaignTarget.organisation_id, CampaignTarget.id)


def _with_open_tasks(session: Session, rows: list[Any], now: datetime) -> list[PersonRow]:
    instance_ids = [row.instance_id for row in rows if row.instance_id is not None]
    first: dict[int, tuple[str, datetime | None]] = {}
    count: dict[int, int] = {}
    if instance_ids:
        tasks = session.execute(select(HumanTask.instance_id, HumanTask.name, HumanTask.due_at)
                                .where(HumanTask.instance_id.in_(instance_ids), HumanTask.state.in_(OPEN))
                                .order_by(HumanTask.instance_id, HumanTask.due_at.is_(None), HumanTask.due_at,
                                          HumanTask.id))
        for instance_id, name, due_at in tasks:
            first.setdefault(instance_id, (name, due_at))
            count[instance_id] = count.get(instance_id, 0) + 1
    people = []
    for target_id, org_id, cadre_name, code, org_name, instance_id, status in rows:
        name, due = first.get(instance_id, (None, None))
        people.append(PersonRow(target_id, org_id, cadre_name, code, org_name, instance_id, status, name, due,
                                count.get(instance_id, 0), due is not None and due < now))
    return people


def parse_position(text: str | None) -> tuple[int, int] | None:
    """A page position from a URL (see :attr:`PersonRow.position`), or ``None`` for the first page."""
    parts = (text or "").split(".")
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(p.isdigit() for p in parts) else None


def people(session: Session, campaign: Campaign, organisation: Organisation, now: datetime, status: str = "all",
           after: tuple[int, int] | None = None, limit: int = PAGE_SIZE) -> list[PersonRow]:
    """The targets in ``organisation``'s subtree (filtered by ``status``), a page after position ``after``."""
    query = _people_query(session, campaign, organisation, status, now)
    if after is not None:
        query = query.where(tuple_(CampaignTarget.organisation_id, CampaignTarget.id) > tuple_(*after))
    return _with_open_tasks(session, list(session.execute(query.limit(limit))), now)


def all_people(session: Session, campaign: Campaign, organisation: Organisation, now: datetime,
               status: str = "all") -> Iterator[PersonRow]:
    """Every target of the subtree, in batches (for exports)."""
    after = None
    while True:
        batch = people(session, campaign, organisation, now, status, after, EXPORT_BATCH)
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        after = (batch[-1].organisation_id, batch[-1].target_id)


# ----------------------------------------------------------------------------------- exports

ORGANISATION_HEADERS = ("组织编码", "组织名称", "范围", "对象数", "已发起", "已完成", "进行中", "逾期任务", "完成率")
PEOPLE_HEADERS = ("对象编号", "团干部", "组织编码", "组织名称", "流程实例", "状态", "当前待办", "待办截止", "待办数",
                  "是否逾期")


def _local(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if moment else ""


def organisation_cells(row: OrganisationCount, scope: str | None = None) -> list[Any]:
    """One row of the per-organisation sheet (scope: 合计 for the whole subtree, 本级, 含下级)."""
    scope = scope or ("本级" if row.own_only else "含下级")
    return [row.code, row.name, scope, row.total, row.launched, row.done, row.running, row.overdue_tasks,
            round(row.rate, 4)]


def person_cells(row: PersonRow) -> list[Any]:
    """One row of the people sheet."""
    return [row.target_id, row.cadre_name or "", row.organisation_code, row.organisation_name, row.instance_id or "",
            row.status_name, row.open_task or "", _local(row.open_task_due), row.open_tasks,
            "是" if row.overdue else "否"]


def _breakdown_cells(breakdown: Breakdown) -> list[list[Any]]:
    return [organisation_cells(breakdown.totals, "合计"), *(organisation_cells(row) for row in breakdown.rows)]


def organisations_csv(breakdown: Breakdown) -> str:
    """The per-organisation numbers as CSV text (first row: the whole subtree)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ORGANISATION_HEADERS)
    writer.writerows(_breakdown_cells(breakdown))
    return "\ufeff" + out.getvalue()  # a BOM, so that Excel reads the Chinese right


def people_csv(rows: Iterator[PersonRow]) -> Iterator[str]:
    """The people as CSV text, streamed a line at a time."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(PEOPLE_HEADERS)
    yield "\ufeff" + out.getvalue()
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow(person_cells(row))
        yield out.getvalue()


def campaign_xlsx(campaign: Campaign, breakdown: Breakdown, rows: Iterator[PersonRow]) -> bytes:
    """A workbook with the per-organisation numbers and the people, as bytes (for small exports)."""
    out = io.BytesIO()
    write_campaign_xlsx(out, campaign, breakdown, rows)
    return out.getvalue()


def write_campaign_xlsx(target: str | Path | BinaryIO, campaign: Campaign, breakdown: Breakdown,
                        rows: Iterator[PersonRow]) -> int:
    """Write the workbook of :func:`campaign_xlsx` to a file or path (write-only: flat memory); the people written."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("按组织")
    sheet.append([f"{campaign.title}（{STATUS_NAMES.get(campaign.status, campaign.status)}）",
                  breakdown.organisation.name])
    sheet.append(list(ORGANISATION_HEADERS))
    for cells in _breakdown_cells(breakdown):
        sheet.append(cells)
    people_sheet = book.create_sheet("明细")
    people_sheet.append(list(PEOPLE_HEADERS))
    written = 0
    for row in rows:
        people_sheet.append(person_cells(row))
        written += 1
    book.save(target)
    return written

